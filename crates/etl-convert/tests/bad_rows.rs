//! `--bad-rows skip|quarantine`: bad records are set aside with their line and reason,
//! the rest converts.

use arrow_array::{Array, Int64Array};
use etl_convert::{
    BadRows, ColumnSchema, ConvertOptions, OutputFormat, RejectedRow, convert_with_rejects,
};

fn run(input: &[u8], bad_rows: BadRows, schema: Option<&str>) -> (String, Vec<RejectedRow>, u64) {
    let options = ConvertOptions {
        format: OutputFormat::Jsonl,
        bad_rows,
        schema: schema.map(|s| ColumnSchema::parse(s).unwrap()),
        ..ConvertOptions::default()
    };
    let mut out = Vec::new();
    let mut rejected = Vec::new();
    let summary = convert_with_rejects(input, &mut out, &options, &[], &mut |row| {
        rejected.push(row);
        Ok(())
    })
    .unwrap();
    assert_eq!(summary.rejected as usize, rejected.len());
    (String::from_utf8(out).unwrap(), rejected, summary.rows)
}

#[test]
fn ragged_unparsable_and_invalid_utf8_rows_are_set_aside_with_their_lines() {
    let mut input = b"1,aaa,100\n2,bbb\n3,\"c\nc\",90\n4,ddd,x4\n5,e\xffe,50\n6,fff,60\n".to_vec();
    for i in 7..=30 {
        input.extend_from_slice(format!("{i},n{i},{i}\n").as_bytes());
    }
    // Without a schema `x4` is a valid text value: the column is text, only structure is bad.
    let (out, rejected, rows) = run(&input, BadRows::Skip, None);
    assert_eq!(rows, 28);
    assert!(out.contains("\"score\":\"x4\""), "{out}");
    assert_eq!(rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 6]);

    // A pinned schema makes a misfit a bad row.
    let schema = "no: int64\nname: text\nscore: int64\n";
    let (out, rejected, rows) = run(&input, BadRows::Quarantine, Some(schema));
    assert_eq!(rows, 27);
    assert!(out.starts_with(
        "{\"no\":1,\"name\":\"aaa\",\"score\":100}\n{\"no\":3,\"name\":\"c\\nc\",\"score\":90}\n{\"no\":6,\"name\":\"fff\",\"score\":60}\n"
    ), "{out}");
    let summary: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| (r.line, r.record.as_str()))
        .collect();
    assert_eq!(
        summary,
        [(2, "2,bbb"), (5, "4,ddd,x4"), (6, "5,e\u{fffd}e,50")]
    );
    assert_eq!(rejected[0].reason, "expected 3 fields, found 2");
    assert_eq!(
        rejected[1].reason,
        "column 'score': a value does not fit int64"
    );
    assert!(
        rejected[2].reason.contains("UTF-8"),
        "{}",
        rejected[2].reason
    );
}

#[test]
fn skipping_keeps_header_handling_and_many_batches() {
    let mut input = String::from("no,name,score\n");
    for i in 1..=20_000 {
        if i % 5000 == 0 {
            input.push_str("oops\n");
        }
        input.push_str(&format!("{i},n{i},{}\n", i % 7));
    }
    let options = ConvertOptions {
        bad_rows: BadRows::Skip,
        ..ConvertOptions::default()
    };
    let mut out = Vec::new();
    let mut lines = Vec::new();
    let summary = convert_with_rejects(input.as_bytes(), &mut out, &options, &[], &mut |row| {
        lines.push(row.line);
        Ok(())
    })
    .unwrap();
    assert_eq!(summary.rows, 20_000);
    assert!(summary.header);
    assert_eq!(lines, [5001, 10002, 15003, 20004]);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(out),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut last = 0;
    for batch in reader {
        let batch = batch.unwrap();
        let no = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        last = no.value(no.len() - 1);
    }
    assert_eq!(last, 20_000);
}
