//! The real-world corpus (`testdata/realworld/`): every file converts with its expected
//! header, row count and schema, and the Parquet footer records the schema used.

use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType};
use etl_convert::{ColumnSchema, ConvertOptions, Kind, convert};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/realworld")
}

fn convert_file(name: &str) -> (Vec<arrow_array::RecordBatch>, ColumnSchema, Option<String>) {
    let file = std::fs::File::open(corpus().join(name)).unwrap();
    let mut out = Vec::new();
    let summary = convert(file, &mut out, &ConvertOptions::default(), &[]).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out)).unwrap();
    let footer = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == "etl.schema"))
        .and_then(|kv| kv.value.clone());
    let schema = ColumnSchema::from_arrow(builder.schema(), false);
    assert_eq!(schema.columns, summary.schema.columns, "{name}");
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (batches, schema, footer)
}

#[test]
fn every_corpus_file_converts_with_its_expected_schema_and_rows() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(corpus().join("expected.json")).unwrap()).unwrap();
    let mut tried = 0;
    for (name, case) in expected.as_object().unwrap() {
        if name.starts_with('_') {
            continue;
        }
        tried += 1;
        let (batches, schema, footer) = convert_file(name);
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows as u64, case["rows"].as_u64().unwrap(), "{name}");
        let want: Vec<(String, Kind)> = case["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let name = c[0].as_str().unwrap().to_owned();
                (name, Kind::from_name(c[1].as_str().unwrap()).unwrap())
            })
            .collect();
        assert_eq!(schema.columns, want, "{name}");
        assert_eq!(footer.as_deref(), Some(schema.compact().as_str()), "{name}");
    }
    assert!(tried >= 15, "corpus shrank: {tried}");
}

#[test]
fn values_that_used_to_be_lost_are_kept() {
    // Decimal comma under `;`.
    let (batches, _, _) = convert_file("excel-semicolon.csv");
    let price = batches[0].column(1).as_primitive::<Float64Type>();
    assert_eq!(price.values().as_ref(), &[3.5, 2.75, 0.99, 1.2]);
    assert_eq!(batches[0].column(0).as_string::<i32>().value(0), "Äpfel");
    // Zoned timestamps in UTC.
    let (batches, _, _) = convert_file("database-export.csv");
    let created = batches[0]
        .column(3)
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(created.value(0), 1_677_658_500_000_000);
    assert_eq!(created.value(1), 1_677_654_000_123_456);
    assert_eq!(created.value(3), 1_677_733_199_500_000);
    // Leading zeros.
    let (batches, _, _) = convert_file("leading-zeros.csv");
    assert_eq!(batches[0].column(0).as_string::<i32>().value(0), "02134");
    // NA tokens are nulls in numeric columns.
    let (batches, _, _) = convert_file("numeric-na.csv");
    assert_eq!(batches[0].column(1).null_count(), 3);
    assert_eq!(batches[0].column(2).null_count(), 4);
}
