//! Trusted timestamps (RFC 3161) for checkpoints: a time-stamping authority (TSA) signs
//! that the checkpoint's statement — the bytes its Ed25519 signature covers
//! ([`super::signing::message`]) — existed at its time. Unlike the archive's own key, the
//! TSA is a third party: an operator can neither backdate a checkpoint nor make one for a
//! head that was never there at that time.
//!
//! The token (a CMS `SignedData` over a `TSTInfo`, DER) is stored beside its checkpoint
//! (`checkpoints/<seq>.tst`), carried in anchors and exports, and checked here: the
//! imprint is the SHA-256 of the statement, the signed attributes hold the digest of the
//! `TSTInfo`, the signature verifies with the signer's certificate, and that certificate
//! chains to a configured TSA certificate (`--tsa-ca`) with the time-stamping key purpose
//! at the token's time. The same token is checked independently by
//!
//! ```text
//! openssl ts -verify -token_in -in checkpoint.tst -data checkpoint.txt -CAfile tsa-ca.pem
//! ```

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{Int, OctetString};
use der::oid::ObjectIdentifier;
use der::{Any, Decode, Encode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::Digest;
use webpki::aws_lc_rs as algs;
use x509_cert::Certificate;
use x509_cert::spki::AlgorithmIdentifier;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

use crate::error::{Error, Result};

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
/// id-kp-timeStamping (1.3.6.1.5.5.7.3.8), the OID's value bytes.
const EKU_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stamp {
    /// When the TSA saw the statement (`genTime`).
    pub time: DateTime<Utc>,
    /// The token's serial number (hex).
    pub serial: String,
    /// The signing certificate's subject.
    pub tsa: String,
    /// Whether the signer chained to a configured TSA certificate; `false` when none was
    /// given (the token is then only internally consistent).
    pub trusted: bool,
    /// The request's nonce the token answers, if it carries one.
    #[serde(skip)]
    pub nonce: Option<Vec<u8>>,
}

/// The imprint a checkpoint's token carries: SHA-256 of its statement.
pub fn imprint(statement: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(statement).into()
}

/// Reads the PEM certificates in `path` (the TSA's chain, or its root).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |why: String| Error::invalid("tsa-ca", format!("{}: {why}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// Checks `token` (a DER `ContentInfo`) against the `digest` it must carry and, when
/// `trusted` holds certificates, against them. The error says what is wrong.
pub fn check(
    token: &[u8],
    digest: &[u8; 32],
    trusted: &[CertificateDer<'_>],
) -> std::result::Result<Stamp, String> {
    let ci = ContentInfo::from_der(token).map_err(|e| format!("not a timestamp token ({e})"))?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err("not a signed timestamp token".into());
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("not a CMS SignedData ({e})"))?;
    if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err("the token does not hold a TSTInfo".into());
    }
    let tst_der = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("the token holds no TSTInfo")?
        .decode_as::<OctetString>()
        .map_err(|e| format!("TSTInfo not an OCTET STRING ({e})"))?;
    let tst_der = tst_der.as_bytes();
    let tst = TstInfo::from_der(tst_der).map_err(|e| format!("bad TSTInfo ({e})"))?;
    if tst.message_imprint.hash_algorithm.oid != ID_SHA256
        || tst.message_imprint.hashed_message.as_bytes() != digest
    {
        return Err("the token stamps other data than this checkpoint".into());
    }

    let [si] = sd.signer_infos.0.as_slice() else {
        return Err("the token must have exactly one signer".into());
    };
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or("the token's signer has no signed attributes")?;
    let attr = |oid: ObjectIdentifier| {
        attrs
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.iter().next())
    };
    let content_type = attr(ID_CONTENT_TYPE)
        .and_then(|v| v.decode_as::<ObjectIdentifier>().ok())
        .ok_or("the signed attributes name no content type")?;
    if content_type != ID_CT_TST_INFO {
        return Err("the signed attributes name another content type".into());
    }
    let signed_digest = attr(ID_MESSAGE_DIGEST)
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or("the signed attributes hold no message digest")?;
    let (own_digest, candidates) = match si.digest_alg.oid {
        ID_SHA256 => (
            sha2::Sha256::digest(tst_der).to_vec(),
            [
                algs::RSA_PKCS1_2048_8192_SHA256,
                algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
                algs::ECDSA_P256_SHA256,
                algs::ECDSA_P384_SHA256,
            ],
        ),
        ID_SHA384 => (
            sha2::Sha384::digest(tst_der).to_vec(),
            [
                algs::RSA_PKCS1_2048_8192_SHA384,
                algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
                algs::ECDSA_P256_SHA384,
                algs::ECDSA_P384_SHA384,
            ],
        ),
        ID_SHA512 => (
            sha2::Sha512::digest(tst_der).to_vec(),
            [
                algs::RSA_PKCS1_2048_8192_SHA512,
                algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
                algs::ECDSA_P256_SHA512,
                algs::ECDSA_P384_SHA512,
            ],
        ),
        other => return Err(format!("unsupported digest algorithm {other}")),
    };
    if signed_digest.as_bytes() != own_digest.as_slice() {
        return Err("the TSTInfo was altered after signing".into());
    }

    // The signer's certificate: in the token, else among the trusted ones.
    let mut certs: Vec<Certificate> = sd
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => Some(c.clone()),
            CertificateChoices::Other(_) => None,
        })
        .collect();
    certs.extend(trusted.iter().filter_map(|c| Certificate::from_der(c).ok()));
    let signer = certs
        .iter()
        .find(|c| is_signer(c, &si.sid))
        .ok_or("the token's signing certificate is neither in the token nor trusted")?;
    let signer_der = signer
        .to_der()
        .map_err(|e| format!("signing certificate ({e})"))?;
    let signer_der = CertificateDer::from(signer_der);
    let ee = webpki::EndEntityCert::try_from(&signer_der)
        .map_err(|e| format!("signing certificate not usable ({e})"))?;
    let signed = attrs
        .to_der()
        .map_err(|e| format!("signed attributes ({e})"))?;
    let sig = si.signature.as_bytes();
    if !candidates
        .iter()
        .any(|alg| ee.verify_signature(*alg, &signed, sig).is_ok())
    {
        return Err("the TSA's signature does not verify (forged or altered)".into());
    }

    let secs = tst.gen_time.to_unix_duration();
    let time = DateTime::<Utc>::from_timestamp(
        i64::try_from(secs.as_secs()).map_err(|_| "genTime out of range")?,
        secs.subsec_nanos(),
    )
    .ok_or("genTime out of range")?;
    if !trusted.is_empty() {
        let anchors = trusted
            .iter()
            .map(webpki::anchor_from_trusted_cert)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format!("a trusted TSA certificate is not usable ({e})"))?;
        let intermediates: Vec<CertificateDer<'_>> = certs
            .iter()
            .filter_map(|c| c.to_der().ok())
            .map(CertificateDer::from)
            .chain(trusted.iter().cloned())
            .collect();
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            UnixTime::since_unix_epoch(secs),
            webpki::KeyUsage::required(EKU_TIME_STAMPING),
            None,
            None,
        )
        .map_err(|e| format!("the TSA's certificate is not trusted at {time} ({e})"))?;
    }
    Ok(Stamp {
        time,
        serial: hex::encode(tst.serial_number.as_bytes()),
        tsa: signer.tbs_certificate.subject.to_string(),
        trusted: !trusted.is_empty(),
        nonce: tst.nonce.map(|n| n.as_bytes().to_vec()),
    })
}

/// A certificate for people: its subject and SHA-256 fingerprint.
pub fn describe(cert: &CertificateDer<'_>) -> String {
    let subject = Certificate::from_der(cert)
        .map(|c| c.tbs_certificate.subject.to_string())
        .unwrap_or_else(|_| "(unreadable certificate)".into());
    format!(
        "`{subject}` (SHA-256 fingerprint `{}`)",
        hex::encode(sha2::Sha256::digest(cert.as_ref()))
    )
}

fn is_signer(c: &Certificate, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(i) => {
            c.tbs_certificate.issuer == i.issuer
                && c.tbs_certificate.serial_number == i.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => matches!(
            c.tbs_certificate.get::<x509_cert::ext::pkix::SubjectKeyIdentifier>(),
            Ok(Some((_, own))) if own == *ski
        ),
    }
}

/// A time-stamping authority: its URL and the certificates its tokens must chain to.
#[derive(Debug)]
pub struct Tsa {
    pub url: String,
    trusted: Vec<CertificateDer<'static>>,
    client: reqwest::Client,
}

/// How long a TSA may take to answer.
const TSA_TIMEOUT: Duration = Duration::from_secs(30);

impl Tsa {
    /// A TSA at `url` (`http://` or `https://`) whose tokens chain to `trusted` (the
    /// certificates of `--tsa-ca`, see [`load_certs`]).
    pub fn new(url: &str, trusted: Vec<CertificateDer<'static>>) -> Result<Tsa> {
        let parsed = url::Url::parse(url).map_err(|e| Error::invalid("tsa", e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::invalid("tsa", "give an http:// or https:// URL"));
        }
        let client = reqwest::Client::builder()
            .timeout(TSA_TIMEOUT)
            .build()
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Tsa {
            url: url.to_string(),
            trusted,
            client,
        })
    }

    pub fn trusted(&self) -> &[CertificateDer<'static>] {
        &self.trusted
    }

    /// Asks the TSA to stamp `statement`; returns the checked token (DER) and what it
    /// says.
    pub async fn stamp(&self, statement: &[u8]) -> Result<(Vec<u8>, Stamp)> {
        let digest = imprint(statement);
        let fail = |why: String| Error::Unavailable(format!("TSA {}: {why}", self.url));
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| Error::Internal(e.to_string()))?;
        nonce[0] &= 0x7f;
        nonce[0] |= 0x01;
        let sent_nonce = Int::new(&nonce).map_err(|e| Error::Internal(e.to_string()))?;
        let req = TimeStampReq {
            version: TspVersion::V1,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifier {
                    oid: ID_SHA256,
                    parameters: Some(Any::null()),
                },
                hashed_message: OctetString::new(digest.to_vec())
                    .map_err(|e| Error::Internal(e.to_string()))?,
            },
            req_policy: None,
            nonce: Some(sent_nonce.clone()),
            cert_req: true,
            extensions: None,
        };
        let body = req.to_der().map_err(|e| Error::Internal(e.to_string()))?;
        let resp = self
            .client
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/timestamp-query")
            .body(body)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("answered {}", resp.status())));
        }
        let bytes = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
        let resp = TimeStampResp::from_der(&bytes)
            .map_err(|e| fail(format!("not a timestamp response ({e})")))?;
        use cmpv2::status::PkiStatus;
        if !matches!(
            resp.status.status,
            PkiStatus::Accepted | PkiStatus::GrantedWithMods
        ) {
            return Err(fail(format!("refused ({:?})", resp.status.status)));
        }
        let token = resp
            .time_stamp_token
            .ok_or_else(|| fail("granted, but sent no token".into()))?
            .to_der()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let stamp = check(&token, &digest, &self.trusted).map_err(fail)?;
        // The nonce ties the answer to this request (no replayed token).
        if stamp.nonce.as_deref() != Some(sent_nonce.as_bytes()) {
            return Err(fail(
                "the token does not answer this request (nonce)".into(),
            ));
        }
        Ok((token, stamp))
    }
}
