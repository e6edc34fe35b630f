//! `record_decode`: arbitrary bytes as a stored record (`decode_record`) and
//! as a log block (`decode_block` / `block_prefix`).
//!
//! Must never panic nor allocate beyond libFuzzer's malloc limit (what a
//! damaged length or count could ask for). Oracles: a decoded record
//! re-encodes to bytes that decode to the same record; `decode_block` agrees
//! with `block_prefix`; an intact block re-encodes to exactly its bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = dealledger::decode_record(data) {
        let bytes = dealledger::encode_record(&rec);
        assert_eq!(dealledger::decode_record(&bytes).as_ref(), Ok(&rec));
    }
    let (prefix, damage) = dealledger::block_prefix(data);
    match dealledger::decode_block(data) {
        Ok(records) => {
            assert_eq!(damage, None);
            assert_eq!(records, prefix);
            let owned: Vec<Vec<u8>> = records.iter().map(|r| r.to_vec()).collect();
            assert_eq!(dealledger::encode_block(&owned), data);
            for record in records {
                let _ = dealledger::decode_record(record);
            }
        }
        Err(e) => assert_eq!(damage, Some(e)),
    }
});
