//! `event_line`: arbitrary text through `dealledger::parse_input`, the parser
//! every append uses (one JSON object, a JSON array, or JSON Lines).
//!
//! Must never panic. Oracle: every accepted event, rendered in its canonical
//! input form (`input_fields` plus its `id`), parses back to the same draft.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(items) = dealledger::parse_input(text) else { return };
    for (_, draft) in items {
        let mut fields =
            dealledger::input_fields(draft.effective, draft.source.as_deref(), draft.note.as_deref(), &draft.event);
        if let Some(id) = draft.id {
            fields.insert("id".into(), id.to_string().into());
        }
        let line = serde_json::Value::Object(fields).to_string();
        let again = match dealledger::parse_input(&line) {
            Ok(again) => again,
            Err(e) => panic!("the canonical form of an accepted event is refused: {e}\n{line}"),
        };
        assert_eq!(again.len(), 1, "{line}");
        assert_eq!(again[0].1, draft, "the canonical form parses to another event: {line}");
    }
});
