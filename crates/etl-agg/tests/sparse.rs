//! Max and winning row from only the ranges the crate asks for.

use bytes::Bytes;
use etl_agg::{
    FooterParse, RowReader, SparseFile, Step, Value, column_chunk_ranges, column_max, parse_footer,
    resolve_column,
};

fn parquet(csv: &str, row_group_rows: usize) -> Bytes {
    let mut out = Vec::new();
    let options = etl_convert::ConvertOptions {
        row_group_rows,
        batch_size: 3,
        ..Default::default()
    };
    etl_convert::convert(csv.as_bytes(), &mut out, &options, &[]).unwrap();
    Bytes::from(out)
}

/// Fetches like the agg command does: a suffix, then the chunks asked for.
fn fetch(
    bytes: &Bytes,
    suffix: u64,
) -> (
    SparseFile,
    std::sync::Arc<parquet::file::metadata::ParquetMetaData>,
) {
    let size = bytes.len() as u64;
    let mut file = SparseFile::new("output/d/1.parquet", size);
    let mut suffix = suffix.min(size);
    loop {
        let start = size - suffix;
        file.insert(start, bytes.slice(start as usize..));
        match parse_footer(&file).unwrap() {
            FooterParse::Parsed(metadata) => return (file, metadata),
            FooterParse::NeedSuffix(n) => suffix = n,
        }
    }
}

#[test]
fn max_and_row_across_row_groups_with_first_maximum_winning() {
    let csv = "1,aaa,70\n2,bbb,100\n3,ccc,90\n4,ddd,100\n5,eee,10\n6,fff,100\n7,ggg,5\n";
    let bytes = parquet(csv, 2);
    let (mut file, metadata) = fetch(&bytes, 8);
    assert_eq!(metadata.num_row_groups(), 4);
    let column = resolve_column(&file, &metadata, "score").unwrap();
    // Without the chunks, reading fails clearly instead of guessing.
    let missing = column_max(&file, &metadata, "score");
    assert!(missing.is_err());
    for range in column_chunk_ranges(&metadata, column) {
        file.insert(
            range.start,
            bytes.slice(range.start as usize..range.end as usize),
        );
    }
    let best = column_max(&file, &metadata, "score").unwrap().unwrap();
    assert_eq!(best.value, Value::Int(100));
    assert_eq!(best.row, 1);
    // The winning row: only the pages the offset index points at.
    let mut reader = RowReader::try_new(file.key(), file.size(), &metadata, best.row).unwrap();
    let row = loop {
        match reader.step().unwrap() {
            Step::Fetch(ranges) => {
                let data = ranges
                    .iter()
                    .map(|r| bytes.slice(r.start as usize..r.end as usize))
                    .collect();
                reader.push(ranges, data).unwrap();
            }
            Step::Row(row) => break row,
        }
    };
    let pairs: Vec<(&str, &str)> = row
        .iter()
        .map(|c| (c.name.as_str(), c.text.as_str()))
        .collect();
    assert_eq!(pairs, [("no", "2"), ("name", "bbb"), ("score", "100")]);
    let typed: Vec<&serde_json::Value> = row.iter().map(|c| &c.value).collect();
    assert_eq!(
        typed,
        [
            &serde_json::json!(2),
            &serde_json::json!("bbb"),
            &serde_json::json!(100)
        ]
    );
}

#[test]
fn corrupt_and_unsuitable_files_are_named_with_plain_type_names() {
    let mut file = SparseFile::new("output/d/bad.parquet", 20);
    file.insert(0, Bytes::from_static(b"this is not parquet!"));
    let err = parse_footer(&file).unwrap_err().to_string();
    assert!(
        err.starts_with("output/d/bad.parquet: not a readable Parquet file"),
        "{err}"
    );

    let bytes = parquet("x,y\na,1\n", 100);
    let (file, metadata) = fetch(&bytes, 1 << 20);
    let err = column_max(&file, &metadata, "score")
        .unwrap_err()
        .to_string();
    assert_eq!(err, "output/d/1.parquet: no column 'score' (columns: x,y)");
    let err = column_max(&file, &metadata, "x").unwrap_err().to_string();
    assert_eq!(err, "output/d/1.parquet: column 'x' is text, not a number");
}

#[test]
fn unsigned_values_above_i64_max_win_instead_of_becoming_null() {
    use std::sync::Arc;
    let values = arrow_array::UInt64Array::from(vec![Some(7), Some(u64::MAX), None, Some(1 << 63)]);
    let batch = arrow_array::RecordBatch::try_from_iter([(
        "score",
        Arc::new(values) as arrow_array::ArrayRef,
    )])
    .unwrap();
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let bytes = Bytes::from(out);
    let (mut file, metadata) = fetch(&bytes, bytes.len() as u64);
    file.insert(0, bytes.clone());
    let best = column_max(&file, &metadata, "score").unwrap().unwrap();
    assert_eq!(best.value, Value::Int(i128::from(u64::MAX)));
    assert_eq!(best.row, 1);
}
