//! Signing keys: generation through tough's crypto library (aws-lc-rs) and loading through a
//! tough [`KeySource`].
//!
//! Every key is stored as a PKCS#8 private key in a PEM file (`-----BEGIN PRIVATE KEY-----`), the
//! format OpenSSL and python-tuf's securesystemslib read too. tough's own `LocalKeySource` wants
//! raw DER for ed25519 and ECDSA and PEM for RSA; [`PemKeySource`] accepts PEM for all three and
//! hands tough the form it parses.

use crate::error::{self, Result};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use snafu::{OptionExt, ResultExt};
use std::path::{Path, PathBuf};
use tough::key_source::KeySource;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::sign::{Sign, parse_keypair};

/// The key types a publisher can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyType {
    /// Ed25519: small, fast; the default.
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256.
    EcdsaP256,
    /// RSA 3072 with RSASSA-PSS and SHA-256.
    Rsa,
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::Rsa => "rsa",
        })
    }
}

/// Generates a private key of `kind` into `path` (mode 0600, never overwriting) and returns its
/// TUF key id.
pub fn generate(kind: KeyType, path: &Path) -> Result<String> {
    let failed = || error::GenerateKeySnafu {
        kind: kind.to_string(),
    };
    let der: Vec<u8> = match kind {
        KeyType::Ed25519 => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .ok()
            .with_context(failed)?
            .as_ref()
            .to_vec(),
        KeyType::EcdsaP256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .ok()
                .with_context(failed)?
                .as_ref()
                .to_vec()
        }
        KeyType::Rsa => aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa3072)
            .ok()
            .and_then(|pair| pair.as_der().ok())
            .with_context(failed)?
            .as_ref()
            .to_vec(),
    };
    let text = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
    crate::fsutil::create_private(path, text.as_bytes())?;
    key_id(path)
}

/// A tough key source reading a PKCS#8 PEM private key file (or the raw forms tough reads).
#[derive(Debug, Clone)]
pub struct PemKeySource {
    /// The key file.
    pub path: PathBuf,
}

impl PemKeySource {
    /// Loads the key and returns something that signs.
    pub fn signer(&self) -> Result<Box<dyn Sign>> {
        let bytes = std::fs::read(&self.path).context(error::ReadFileSnafu { path: &self.path })?;
        parse(&bytes).context(error::NotAKeySnafu { path: &self.path })
    }
}

fn parse(bytes: &[u8]) -> Option<Box<dyn Sign>> {
    if let Ok(block) = pem::parse(bytes) {
        if block.tag() == "PRIVATE KEY" {
            if let Ok(pair) = parse_keypair(block.contents()) {
                return Some(Box::new(pair));
            }
        }
    }
    // RSA keys are parsed by tough from their PEM text; raw DER ed25519/ECDSA keys as they are.
    parse_keypair(bytes)
        .ok()
        .map(|pair| Box::new(pair) as Box<dyn Sign>)
}

#[async_trait::async_trait]
impl KeySource for PemKeySource {
    async fn as_sign(
        &self,
    ) -> std::result::Result<Box<dyn Sign>, Box<dyn std::error::Error + Send + Sync + 'static>>
    {
        Ok(self.signer().map_err(Box::new)?)
    }

    async fn write(
        &self,
        _value: &str,
        _key_id_hex: &str,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Err("repo-tool never writes keys back through a key source".into())
    }
}

/// The public half of a key file, as root.json lists it.
pub fn public_key(path: &Path) -> Result<Key> {
    Ok(PemKeySource {
        path: path.to_path_buf(),
    }
    .signer()?
    .tuf_key())
}

/// The TUF key id (hex) of a key file.
pub fn key_id(path: &Path) -> Result<String> {
    Ok(hex_id(&key_id_decoded(path)?))
}

/// The TUF key id of a key file, decoded.
pub fn key_id_decoded(path: &Path) -> Result<Decoded<Hex>> {
    public_key(path)?
        .key_id()
        .context(error::KeyIdSnafu { path })
}

/// Hex text of a key id.
pub fn hex_id(id: &Decoded<Hex>) -> String {
    hex::encode(id.as_ref() as &[u8])
}

/// Key sources for a list of key files, as tough's editor wants them.
pub fn key_sources(paths: &[PathBuf]) -> Vec<Box<dyn KeySource>> {
    paths
        .iter()
        .map(|path| Box::new(PemKeySource { path: path.clone() }) as Box<dyn KeySource>)
        .collect()
}
