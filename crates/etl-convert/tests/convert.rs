//! Conversion behaviour on small inputs: types, header sniffing, formats, bad records.

use arrow_array::{Array, Int64Array, StringArray};
use bytes_reader::read_parquet;
use etl_convert::{ConvertOptions, Error, HeaderMode, OutputFormat, convert};
use etl_error::{Classify, ErrorClass};

mod bytes_reader {
    use arrow_array::RecordBatch;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    pub fn read_parquet(bytes: Vec<u8>) -> (Vec<RecordBatch>, Vec<(String, String)>) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let kv = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|kv| (kv.key, kv.value.unwrap_or_default()))
            .collect();
        let batches = builder
            .build()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        (batches, kv)
    }
}

fn run(input: &str, options: &ConvertOptions) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    convert(input.as_bytes(), &mut out, options, &[]).map(|_| out)
}

#[test]
fn seed_file_becomes_int64_string_int64_parquet() {
    let mut out = Vec::new();
    let meta = vec![("etl.source.key".to_owned(), "input/test.csv".to_owned())];
    let summary = convert(
        "1,aaa,100\n2,bbb,80\n3,ccc,90\n".as_bytes(),
        &mut out,
        &ConvertOptions::default(),
        &meta,
    )
    .unwrap();
    assert_eq!(summary.rows, 3);
    assert!(!summary.header);
    let (batches, kv) = read_parquet(out);
    let batch = &batches[0];
    let schema = batch.schema();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["no", "name", "score"]);
    let no = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    let name = batch
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let score = batch
        .column(2)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(no.values(), &[1, 2, 3]);
    assert_eq!(name.value(2), "ccc");
    assert_eq!(score.values(), &[100, 80, 90]);
    assert!(kv.contains(&("etl.source.key".to_owned(), "input/test.csv".to_owned())));
}

#[test]
fn header_is_sniffed_and_names_kept() {
    let out = run(
        "id,label,points\n1,a,5\n2,b,6\n",
        &ConvertOptions::default(),
    )
    .unwrap();
    let (batches, _) = read_parquet(out);
    let schema = batches[0].schema();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "label", "points"]);
    assert_eq!(batches[0].num_rows(), 2);
}

#[test]
fn a_header_only_file_is_an_empty_table_with_its_columns() {
    let mut out = Vec::new();
    let summary = convert(
        "no,name,score\n".as_bytes(),
        &mut out,
        &ConvertOptions::default(),
        &[],
    )
    .unwrap();
    assert_eq!((summary.rows, summary.header), (0, true));
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(out),
    )
    .unwrap();
    let names: Vec<_> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["no", "name", "score"]);
    assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
}

#[test]
fn headerless_file_of_other_width_gets_column_names() {
    let out = run("1,2\n3,4\n", &ConvertOptions::default()).unwrap();
    let (batches, _) = read_parquet(out);
    assert_eq!(batches[0].schema().field(1).name(), "column_2");
}

#[test]
fn explicit_columns_must_match_width() {
    let options = ConvertOptions {
        columns: Some(vec!["a".into(), "b".into()]),
        header: HeaderMode::Absent,
        ..ConvertOptions::default()
    };
    let err = run("1,x,3\n", &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "2 column names given (a,b) but the file has 3 columns"
    );
    assert_eq!(err.class(), ErrorClass::BadInput);
}

#[test]
fn jsonl_and_csv_outputs() {
    let options = ConvertOptions {
        format: OutputFormat::Jsonl,
        ..ConvertOptions::default()
    };
    let out = run("1,aaa,100\n2,bbb,80\n", &options).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"no\":1,\"name\":\"aaa\",\"score\":100}\n{\"no\":2,\"name\":\"bbb\",\"score\":80}\n"
    );
    let options = ConvertOptions {
        format: OutputFormat::Csv,
        ..ConvertOptions::default()
    };
    let out = run("1,aaa,100\n", &options).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "no,name,score\n1,aaa,100\n"
    );
}

#[test]
fn ragged_row_names_its_line() {
    let err = run("1,aaa,100\n2,bbb,80\n3,ccc\n", &ConvertOptions::default()).unwrap_err();
    assert_eq!(err.line(), Some(3), "{err}");
    assert_eq!(err.class(), ErrorClass::BadInput);
}

#[test]
fn a_late_misfit_asks_for_widening_at_its_line_without_the_value() {
    let err = run(
        "no,name,score\n1,aaa,100\n2,bbb,80\n3,ccc,x9\n",
        &ConvertOptions {
            sample_bytes: 30,
            ..ConvertOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.line(), Some(4), "{err}");
    assert_eq!(
        err.to_string(),
        "line 4: column 'score' holds a value that does not fit int64 (types are inferred from a sample); it needs text: pin it with --schema (see --print-schema)"
    );
    assert_eq!(err.class(), ErrorClass::BadInput);
}

#[test]
fn bad_value_beyond_the_first_batch_names_its_line() {
    let mut input = String::new();
    for i in 1..=100 {
        input.push_str(&format!("{i},n{i},{i}\n"));
    }
    input.push_str("101,n101,oops\n");
    let options = ConvertOptions {
        batch_size: 7,
        sample_bytes: 64,
        ..ConvertOptions::default()
    };
    let err = run(&input, &options).unwrap_err();
    assert_eq!(err.line(), Some(101), "{err}");
}

#[test]
fn empty_input_is_rejected() {
    assert!(matches!(
        run("", &ConvertOptions::default()),
        Err(Error::Empty)
    ));
    assert!(matches!(
        run("\u{feff}\n", &ConvertOptions::default()),
        Err(Error::Empty)
    ));
}

#[test]
fn bom_and_crlf_are_benign() {
    let out = run(
        "\u{feff}1,aaa,100\r\n2,bbb,80\r\n",
        &ConvertOptions::default(),
    )
    .unwrap();
    let (batches, _) = read_parquet(out);
    let score = batches[0]
        .column(2)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(score.values(), &[100, 80]);
    let name = batches[0]
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(name.value(1), "bbb");
    assert_eq!(name.null_count(), 0);
}

#[test]
fn a_large_input_streams_in_many_batches_and_row_groups() {
    let mut input = String::new();
    for i in 0..50_000 {
        input.push_str(&format!("{i},name{},{}\n", i % 97, i * 3));
    }
    let options = ConvertOptions {
        batch_size: 4096,
        row_group_rows: 10_000,
        ..ConvertOptions::default()
    };
    let out = run(&input, &options).unwrap();
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(out),
    )
    .unwrap();
    assert_eq!(builder.metadata().num_row_groups(), 5);
    assert_eq!(builder.metadata().file_metadata().num_rows(), 50_000);
}

#[test]
fn last_record_without_final_newline_is_kept() {
    let out = run("1,aaa,100\n2,bbb,80", &ConvertOptions::default()).unwrap();
    let (batches, _) = read_parquet(out);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
}

#[test]
fn unclosed_quote_names_where_it_opened() {
    let err = run(
        "1,aaa,100\n2,\"bbb,80\n3,ccc,90\n",
        &ConvertOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2: a quoted field opens here and is never closed"
    );
}

#[test]
fn a_first_line_longer_than_the_sample_is_inferred_whole() {
    let long = "x".repeat(3 << 20);
    let input = format!("1,{long},100\n2,b,80\n");
    let out = run(&input, &ConvertOptions::default()).unwrap();
    let (batches, _) = read_parquet(out);
    let names = batches[0].schema();
    assert_eq!(names.field(2).name(), "score");
    let name = batches[0]
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(name.value(0).len(), 3 << 20);
}

#[test]
fn invalid_utf8_names_its_line() {
    let mut out = Vec::new();
    let err = convert(
        &b"1,aaa,100\n2,b\xffb,80\n"[..],
        &mut out,
        &ConvertOptions::default(),
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2: invalid UTF-8 (the file must be UTF-8 text)"
    );
}

#[test]
fn blank_lines_before_the_header_count_as_lines() {
    let mut out = Vec::new();
    let summary = convert(
        "\n\r\nid,name\n1,a\n2,b\n".as_bytes(),
        &mut out,
        &ConvertOptions::default(),
        &[],
    )
    .unwrap();
    assert_eq!((summary.rows, summary.header), (2, true));
    assert_eq!(summary.columns[0], ("id".to_owned(), "int64".to_owned()));
    let err = run("\n\nid,name\n1,a\n2,b,c\n", &ConvertOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), "line 5: expected 2 fields, found 3");
}

#[test]
fn types_also_come_from_chunks_further_into_a_file() {
    let mut text = String::from("id,score\n");
    // Past the first MiB, one value in a thousand has a fraction.
    for i in 0..260_000 {
        match i {
            150_000.. if i % 1000 == 0 => text.push_str(&format!("{i},{}.5\n", i % 10)),
            _ => text.push_str(&format!("{i},{}\n", i % 10)),
        }
    }
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    let options = ConvertOptions {
        format: OutputFormat::Csv,
        ..ConvertOptions::default()
    };
    let extra =
        etl_convert::sample_offsets(&mut file, options.sample_bytes as u64, 8, 128 * 1024).unwrap();
    // Without the extra sample the float is past the first MiB: a widening.
    let err = convert(&file, Vec::new(), &options, &[]).unwrap_err();
    assert!(matches!(err, Error::Widened(_)), "{err}");
    std::io::Seek::rewind(&mut file).unwrap();
    let options = ConvertOptions {
        extra_sample: Some(etl_convert::ExtraSample(std::sync::Arc::new(extra))),
        ..options
    };
    let summary = convert(&file, Vec::new(), &options, &[]).unwrap();
    assert_eq!(summary.columns[1].1, "float64");
    assert_eq!(summary.rows, 260_000);
}
