//! `convert INPUT OUTPUT [COMPRESSION]`: a CSV file to Parquet with the default options, as
//! `etl --input INPUT --output OUTPUT [--compression C]` converts it, for profiling.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: convert INPUT OUTPUT".into());
    };
    let input = std::fs::File::open(input)?;
    let output = std::io::BufWriter::new(std::fs::File::create(output)?);
    let options = etl_convert::ConvertOptions {
        compression: args.next().map(|c| c.parse()).transpose()?,
        ..etl_convert::ConvertOptions::default()
    };
    let summary = etl_convert::convert(input, output, &options, &[])?;
    eprintln!("{} rows: {:?}", summary.rows, summary.columns);
    Ok(())
}
