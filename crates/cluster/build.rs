//! Compiles Kubernetes' .proto files (proto/, see proto/README.md) into one descriptor set
//! with protox (pure Rust, no system protoc); `protobuf` reads it at run time to decode and
//! encode `application/vnd.kubernetes.protobuf`.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "api/core/v1/generated.proto",
        "api/apps/v1/generated.proto",
        "api/coordination/v1/generated.proto",
        "api/events/v1/generated.proto",
        "api/policy/v1/generated.proto",
        "api/autoscaling/v1/generated.proto",
        "apiextensions_apiserver/pkg/apis/apiextensions/v1/generated.proto",
        "apimachinery/pkg/apis/meta/v1/generated.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let set = protox::compile(files, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("kubernetes.bin");
    std::fs::write(out, set.encode_to_vec())?;
    Ok(())
}
