//! Compiles `proto/generic.proto` (Argo Events generic event source) with protox, a
//! pure-Rust protobuf compiler, so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/generic.proto");
    let descriptors = protox::compile(["proto/generic.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
