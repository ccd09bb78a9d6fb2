//! `kcnode image save`: images out of the store as one tar that is both an
//! OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`) and a
//! docker-archive (`manifest.json`), as `docker save` writes since Docker 25,
//! so `kcnode image import`, `docker load`, skopeo and umoci all read it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};

use serde::Serialize;

use super::digest::Digest;
use super::error::{IoContext, Result};
use super::oci::{self, Descriptor, Index};
use super::progress;
use super::reference::{Reference, TaggedName};
use super::store::ImageStore;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Writes the images named by `references` as a tar to `out`.
pub fn save(store: &ImageStore, references: &[String], out: impl Write) -> Result<()> {
    let mut index = Index {
        schema_version: 2,
        media_type: Some(oci::MEDIA_INDEX.to_string()),
        manifests: Vec::new(),
        annotations: BTreeMap::new(),
    };
    let mut docker = Vec::new();
    let mut blobs: BTreeSet<Digest> = BTreeSet::new();
    let mut total = 0;
    for reference in references {
        let manifest_digest = store.lookup(reference)?;
        let img = store.image(&manifest_digest)?;
        let tag = match Reference::parse(reference)? {
            Reference::Tag(t) => Some(t),
            Reference::Id(_) => None,
        };
        let mut annotations = BTreeMap::new();
        if let Some(t) = &tag {
            annotations.insert(oci::ANNOTATION_CONTAINERD_NAME.to_string(), full_name(t));
            annotations.insert(oci::ANNOTATION_REF_NAME.to_string(), t.tag.clone());
        }
        let manifest_data = store.read_blob(&manifest_digest)?;
        index.manifests.push(Descriptor {
            media_type: img
                .manifest
                .media_type
                .clone()
                .unwrap_or_else(|| oci::MEDIA_MANIFEST.to_string()),
            digest: manifest_digest.to_string(),
            size: manifest_data.len() as u64,
            annotations,
            platform: None,
        });
        let mut layer_paths = Vec::new();
        for l in &img.manifest.layers {
            let d = Digest::parse(&l.digest)?;
            layer_paths.push(format!("blobs/sha256/{}", d.hex()));
            if blobs.insert(d) {
                total += l.size;
            }
        }
        blobs.insert(manifest_digest);
        blobs.insert(img.id.clone());
        docker.push(DockerEntry {
            config: format!("blobs/sha256/{}", img.id.hex()),
            repo_tags: tag.iter().map(TaggedName::to_string).collect(),
            layers: layer_paths,
        });
    }

    let mut tar = tar::Builder::new(out);
    let fail = |e: io::Error| super::ImageError::Io {
        context: "cannot write the image archive".to_string(),
        cause: e,
    };
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(fail)?;
    append_bytes(&mut tar, "index.json", &to_json(&index)).map_err(fail)?;
    append_bytes(&mut tar, "manifest.json", &to_json(&docker)).map_err(fail)?;
    let bar = progress::bytes_bar(total, "saving");
    for d in &blobs {
        let path = store.blob_path(d);
        let file = File::open(&path).ctx(|| format!("blob {d} is missing from the image store"))?;
        let size = file.metadata().ctx_path("stat", &path)?.len();
        let mut header = blob_header(size);
        tar.append_data(
            &mut header,
            format!("blobs/sha256/{}", d.hex()),
            bar.wrap_read(file),
        )
        .map_err(fail)?;
    }
    bar.finish_and_clear();
    tar.into_inner().and_then(|mut w| w.flush()).map_err(fail)?;
    Ok(())
}

/// `docker.io/library/name:tag` for one-part names, as Docker writes it.
fn full_name(t: &TaggedName) -> String {
    if t.name.contains('/') {
        t.to_string()
    } else {
        format!("docker.io/library/{t}")
    }
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("plain data structures always encode")
}

fn blob_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = blob_header(data.len() as u64);
    tar.append_data(&mut h, name, data)
}
