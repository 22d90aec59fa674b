//! OpenID Connect without HTTP: PKCE, ID-token (JWT) verification against
//! a provider's keys, claim checks, and reading claims by path.
//!
//! Only RS256 signatures are accepted (what Login.gov, ProConnect, Entra ID
//! and Keycloak sign with by default); `none` and symmetric algorithms are
//! refused, so a token can never choose to be unsigned or signed with a
//! public value.

use base64::Engine as _;
use rsa::signature::Verifier as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Why a token or a response from the provider was refused. Messages are
/// shown to the person signing in, so they say what went wrong without
/// echoing the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider's token is malformed: {0}")]
    Malformed(String),
    #[error("the identity provider's token uses the algorithm `{0}`; only RS256 is accepted")]
    UnsupportedAlgorithm(String),
    #[error("the identity provider's token is signed with a key it does not publish (`{0}`)")]
    UnknownKey(String),
    #[error("the identity provider's token has an invalid signature")]
    BadSignature,
    #[error("the identity provider's token was issued by `{0}`, not by the configured issuer")]
    WrongIssuer(String),
    #[error("the identity provider's token was issued for another application (audience)")]
    WrongAudience,
    #[error("the identity provider's token has expired; sign in again")]
    Expired,
    #[error("the identity provider's token is not valid yet; check the clocks")]
    NotYetValid,
    #[error("the identity provider's token does not answer this sign-in (nonce)")]
    NonceMismatch,
}

/// One key of a provider's JWKS.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub key_use: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
}

/// `{"keys": [...]}`.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>, OidcError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| OidcError::Malformed("not base64url".to_owned()))
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = crate::secret::random_token();
        let challenge = b64(&Sha256::digest(verifier.as_bytes()));
        Pkce { verifier, challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

/// The parts of a compact JWS.
#[derive(Debug)]
pub struct Jws {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Value,
    signed: String,
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS without checking it.
pub fn parse(token: &str) -> Result<Jws, OidcError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::Malformed("not three dot-separated parts".to_owned()));
    };
    let header: Value = serde_json::from_slice(&unb64(header)?)
        .map_err(|_| OidcError::Malformed("the header is not JSON".to_owned()))?;
    let claims: Value = serde_json::from_slice(&unb64(payload)?)
        .map_err(|_| OidcError::Malformed("the claims are not JSON".to_owned()))?;
    if !claims.is_object() {
        return Err(OidcError::Malformed("the claims are not an object".to_owned()));
    }
    Ok(Jws {
        alg: header["alg"].as_str().unwrap_or("").to_owned(),
        kid: header["kid"].as_str().map(str::to_owned),
        claims,
        signed: token[..token.len() - signature.len() - 1].to_owned(),
        signature: unb64(signature)?,
    })
}

impl Jws {
    /// The key of `keys` this token names (or the only RSA key, when the
    /// token names none); `None` when the provider does not publish it.
    pub fn find_key<'a>(&self, keys: &'a JwkSet) -> Option<&'a Jwk> {
        let usable = |key: &&Jwk| {
            key.kty == "RSA"
                && key.key_use.as_deref().is_none_or(|u| u == "sig")
                && key.alg.as_deref().is_none_or(|a| a == "RS256")
        };
        match &self.kid {
            Some(kid) => keys
                .keys
                .iter()
                .filter(usable)
                .find(|key| key.kid.as_deref() == Some(kid.as_str())),
            None => {
                let mut rsa = keys.keys.iter().filter(usable);
                let only = rsa.next();
                if rsa.next().is_some() {
                    None
                } else {
                    only
                }
            }
        }
    }

    /// Checks the signature with `key`.
    pub fn verify_signature(&self, key: &Jwk) -> Result<(), OidcError> {
        if self.alg != "RS256" {
            return Err(OidcError::UnsupportedAlgorithm(self.alg.clone()));
        }
        let (Some(n), Some(e)) = (&key.n, &key.e) else {
            return Err(OidcError::Malformed(
                "the provider's key has no modulus or exponent".to_owned(),
            ));
        };
        let public = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&unb64(n)?),
            rsa::BigUint::from_bytes_be(&unb64(e)?),
        )
        .map_err(|_| OidcError::Malformed("the provider's key is not a valid RSA key".to_owned()))?;
        let verifying = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public);
        let signature = rsa::pkcs1v15::Signature::try_from(self.signature.as_slice())
            .map_err(|_| OidcError::BadSignature)?;
        verifying
            .verify(self.signed.as_bytes(), &signature)
            .map_err(|_| OidcError::BadSignature)
    }
}

/// What an ID token must satisfy.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The nonce sent with the authorization request; `None` for tokens
    /// without one (signed userinfo answers).
    pub nonce: Option<&'a str>,
    pub now: i64,
    pub skew_seconds: i64,
    /// Whether `exp` must be present (ID tokens) or may be absent.
    pub require_expiry: bool,
}

/// Checks issuer, audience, authorized party, expiry, not-before,
/// issued-at and nonce (signature checked separately).
pub fn check_claims(claims: &Value, expect: &Expectations) -> Result<(), OidcError> {
    let issuer = claims["iss"].as_str().unwrap_or("");
    if issuer != expect.issuer {
        return Err(OidcError::WrongIssuer(issuer.chars().take(200).collect()));
    }
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => aud == expect.client_id,
        Value::Array(auds) => {
            auds.iter().any(|aud| aud.as_str() == Some(expect.client_id))
                && (auds.len() == 1 || claims["azp"].as_str() == Some(expect.client_id))
        }
        _ => false,
    };
    if !audience_ok {
        return Err(OidcError::WrongAudience);
    }
    match claims["exp"].as_i64() {
        Some(exp) if exp + expect.skew_seconds < expect.now => return Err(OidcError::Expired),
        None if expect.require_expiry => return Err(OidcError::Malformed("no expiry (`exp`)".to_owned())),
        _ => {}
    }
    for claim in ["nbf", "iat"] {
        if claims[claim]
            .as_i64()
            .is_some_and(|at| at - expect.skew_seconds > expect.now)
        {
            return Err(OidcError::NotYetValid);
        }
    }
    if let Some(nonce) = expect.nonce {
        let sent = claims["nonce"].as_str().unwrap_or("");
        if !crate::secret::constant_time_eq(sent, nonce) {
            return Err(OidcError::NonceMismatch);
        }
    }
    Ok(())
}

/// Verifies a token completely: algorithm, key, signature and claims.
/// `Err(UnknownKey)` tells the caller to refresh the provider's keys once.
pub fn verify(token: &str, keys: &JwkSet, expect: &Expectations) -> Result<Value, OidcError> {
    let jws = parse(token)?;
    if jws.alg != "RS256" {
        return Err(OidcError::UnsupportedAlgorithm(jws.alg));
    }
    let key = jws
        .find_key(keys)
        .ok_or_else(|| OidcError::UnknownKey(jws.kid.clone().unwrap_or_default()))?;
    jws.verify_signature(key)?;
    check_claims(&jws.claims, expect)?;
    Ok(jws.claims)
}

/// The values at a dotted claim path (`groups`, `realm_access.roles`), as
/// strings: a string gives one value, an array its string items.
pub fn claim_values(claims: &Value, path: &str) -> Vec<String> {
    let mut current = claims;
    for part in path.split('.').filter(|part| !part.is_empty()) {
        current = &current[part];
    }
    match current {
        Value::String(value) => vec![value.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect(now: i64) -> Expectations<'static> {
        Expectations {
            issuer: "https://idp.example.gov",
            client_id: "civitas",
            nonce: Some("n-1"),
            now,
            skew_seconds: 60,
            require_expiry: true,
        }
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example.gov", "aud": "civitas", "exp": 2000, "iat": 1000, "nonce": "n-1", "sub": "s"})
    }

    #[test]
    fn claims_are_checked_with_clock_skew() {
        assert_eq!(check_claims(&claims(), &expect(1500)), Ok(()));
        assert_eq!(check_claims(&claims(), &expect(2059)), Ok(()), "within the skew");
        assert_eq!(check_claims(&claims(), &expect(2061)), Err(OidcError::Expired));
        assert_eq!(check_claims(&claims(), &expect(939)), Err(OidcError::NotYetValid));
        let mut wrong = claims();
        wrong["aud"] = json!(["other"]);
        assert_eq!(check_claims(&wrong, &expect(1500)), Err(OidcError::WrongAudience));
        wrong["aud"] = json!(["civitas", "other"]);
        assert_eq!(
            check_claims(&wrong, &expect(1500)),
            Err(OidcError::WrongAudience),
            "several audiences need azp"
        );
        wrong["azp"] = json!("civitas");
        assert_eq!(check_claims(&wrong, &expect(1500)), Ok(()));
        let mut replay = claims();
        replay["nonce"] = json!("n-2");
        assert_eq!(
            check_claims(&replay, &expect(1500)),
            Err(OidcError::NonceMismatch)
        );
        let mut forged = claims();
        forged["iss"] = json!("https://evil.example");
        assert!(matches!(
            check_claims(&forged, &expect(1500)),
            Err(OidcError::WrongIssuer(_))
        ));
    }

    #[test]
    fn unsigned_and_malformed_tokens_are_refused() {
        let header = b64(br#"{"alg":"none"}"#);
        let payload = b64(claims().to_string().as_bytes());
        let unsigned = format!("{header}.{payload}.");
        let keys = JwkSet::default();
        assert_eq!(
            verify(&unsigned, &keys, &expect(1500)),
            Err(OidcError::UnsupportedAlgorithm("none".to_owned()))
        );
        let hs = format!("{}.{payload}.{}", b64(br#"{"alg":"HS256"}"#), b64(b"sig"));
        assert_eq!(
            verify(&hs, &keys, &expect(1500)),
            Err(OidcError::UnsupportedAlgorithm("HS256".to_owned()))
        );
        let rs = format!(
            "{}.{payload}.{}",
            b64(br#"{"alg":"RS256","kid":"k9"}"#),
            b64(b"sig")
        );
        assert_eq!(
            verify(&rs, &keys, &expect(1500)),
            Err(OidcError::UnknownKey("k9".to_owned()))
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(matches!(parse(bad), Err(OidcError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            b64(&Sha256::digest(verifier.as_bytes())),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pkce = Pkce::new();
        assert_eq!(pkce.challenge, b64(&Sha256::digest(pkce.verifier.as_bytes())));
    }

    #[test]
    fn claim_paths_reach_nested_values() {
        let claims =
            json!({"groups": ["a", "b", 3], "realm_access": {"roles": ["agency-admin"]}, "dept": "finances"});
        assert_eq!(claim_values(&claims, "groups"), vec!["a", "b"]);
        assert_eq!(claim_values(&claims, "realm_access.roles"), vec!["agency-admin"]);
        assert_eq!(claim_values(&claims, "dept"), vec!["finances"]);
        assert!(claim_values(&claims, "missing.path").is_empty());
    }
}
