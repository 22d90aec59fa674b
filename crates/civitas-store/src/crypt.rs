//! Envelope encryption of what people write (message contents and their
//! structured parts, conversation titles).
//!
//! Each agency has data keys (AES-256-GCM), created on first use. A data
//! key is kept in the database only wrapped by a master key, which is read
//! from a key location (a file or the environment) and never stored with
//! the data. A sealed value is bound to its row and field (the additional
//! authenticated data), so a ciphertext copied to another row does not open.
//!
//! Rotation: a new data key becomes the agency's active key for writes
//! while older ones still open what they sealed, until the rows are
//! re-encrypted and the old key is retired. A new master key is added
//! beside the old one, the data keys are re-wrapped, then the old master
//! key is removed: no downtime. Crypto-shredding: destroying an agency's
//! data keys makes all it sealed unreadable; once the master key that
//! wrapped copies of them in older backups is retired too, those backups
//! are unreadable as well.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use crate::{StoreError, StoreResult};

const KEY_LEN: usize = 32;
/// How long a replica keeps using a data key it unwrapped before it looks
/// at the key's row again: a rotation or a destruction on another replica
/// reaches this one within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

fn random_bytes<const N: usize>() -> StoreResult<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Key("the system's random source failed".to_owned()))?;
    Ok(bytes)
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// An AES-256-GCM key.
struct SealingKey(LessSafeKey);

impl SealingKey {
    fn new(bytes: &[u8]) -> Option<SealingKey> {
        UnboundKey::new(&AES_256_GCM, bytes)
            .ok()
            .map(|key| SealingKey(LessSafeKey::new(key)))
    }

    /// `nonce ‖ ciphertext ‖ tag`, fresh random nonce.
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> StoreResult<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = random_bytes()?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        sealed.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .map_err(|_| StoreError::Key("encryption failed".to_owned()))?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(aad), &mut body).ok()?;
        let length = plain.len();
        body.truncate(length);
        Some(body)
    }
}

/// The key that wraps the data keys. Its id (a digest, not the key) is
/// kept beside each wrapped data key, so a replica can tell which master
/// key it lacks.
pub struct MasterKey {
    id: String,
    key: SealingKey,
    bytes: [u8; KEY_LEN],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    pub fn generate() -> StoreResult<MasterKey> {
        let bytes: [u8; KEY_LEN] = random_bytes()?;
        MasterKey::from_bytes(bytes).ok_or_else(|| StoreError::Key("cannot build a key".to_owned()))
    }

    fn from_bytes(bytes: [u8; KEY_LEN]) -> Option<MasterKey> {
        let digest = Sha256::new()
            .chain_update(b"civitas master key id\0")
            .chain_update(bytes)
            .finalize();
        let id = digest[..8].iter().map(|byte| format!("{byte:02x}")).collect();
        Some(MasterKey {
            id,
            key: SealingKey::new(&bytes)?,
            bytes,
        })
    }

    /// A key written as base64 of 32 bytes.
    pub fn from_text(text: &str) -> Option<MasterKey> {
        let bytes = b64().decode(text.trim()).ok()?;
        MasterKey::from_bytes(bytes.try_into().ok()?)
    }

    /// Base64, as kept in a key file or variable.
    pub fn to_text(&self) -> String {
        b64().encode(self.bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// What wraps and unwraps data keys: a master key held in memory
/// ([`MasterKey`], read from a file or the environment), or — the seam for
/// later — a key management service whose key never leaves it (implement
/// this over its wrap/unwrap calls; they happen once per data key and
/// [`KEY_CACHE_TTL`], never per message).
pub trait KeyWrapper: Send + Sync + std::fmt::Debug {
    /// A stable id kept beside each wrapped key (never the key itself).
    fn id(&self) -> &str;
    /// `key` sealed, bound to `aad`.
    fn wrap(&self, key: &[u8], aad: &[u8]) -> StoreResult<Vec<u8>>;
    /// What [`wrap`](Self::wrap) sealed with the same `aad`; `None` when it
    /// does not open.
    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Option<Vec<u8>>;
}

impl KeyWrapper for MasterKey {
    fn id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, key: &[u8], aad: &[u8]) -> StoreResult<Vec<u8>> {
        self.key.seal(key, aad)
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        self.key.open(wrapped, aad)
    }
}

/// A data key as kept in the database: wrapped by a master key.
#[derive(Debug, Clone)]
pub struct WrappedDataKey {
    pub id: String,
    pub agency_id: String,
    /// `None` once destroyed or retired.
    pub wrapped: Option<String>,
    pub master_key_id: String,
}

fn data_key_aad(id: &str, agency_id: &str) -> Vec<u8> {
    format!("civitas data key\0{id}\0{agency_id}").into_bytes()
}

/// What a sealed value is bound to: its table, row and field.
pub fn field_aad(table: &str, row_id: &str, field: &str) -> Vec<u8> {
    format!("{table}\0{row_id}\0{field}").into_bytes()
}

/// An agency's data key, unwrapped, in memory only.
pub struct DataKey {
    pub id: String,
    pub agency_id: String,
    key: SealingKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({}, agency {})", self.id, self.agency_id)
    }
}

impl DataKey {
    /// Seals `plaintext` bound to `aad`; base64 text, for a text column.
    pub fn seal(&self, plaintext: &str, aad: &[u8]) -> StoreResult<String> {
        Ok(b64().encode(self.key.seal(plaintext.as_bytes(), aad)?))
    }

    /// Opens what [`seal`](Self::seal) produced with the same `aad`.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> StoreResult<String> {
        let unreadable =
            || StoreError::Key(format!("a value sealed with data key {} does not open", self.id));
        let bytes = b64().decode(sealed).map_err(|_| unreadable())?;
        let plain = self.key.open(&bytes, aad).ok_or_else(unreadable)?;
        String::from_utf8(plain).map_err(|_| unreadable())
    }
}

impl DataKey {
    /// Seals bytes (a file) bound to `aad`, for a binary column.
    pub fn seal_bytes(&self, plaintext: &[u8], aad: &[u8]) -> StoreResult<Vec<u8>> {
        self.key.seal(plaintext, aad)
    }

    /// Opens what [`seal_bytes`](Self::seal_bytes) produced.
    pub fn open_bytes(&self, sealed: &[u8], aad: &[u8]) -> StoreResult<Vec<u8>> {
        self.key
            .open(sealed, aad)
            .ok_or_else(|| StoreError::Key(format!("a value sealed with data key {} does not open", self.id)))
    }
}

/// The master keys this replica holds and the data keys it unwrapped.
#[derive(Debug)]
pub struct Keyring {
    master: Box<dyn KeyWrapper>,
    /// Older master keys, still accepted to unwrap while the data keys are
    /// re-wrapped with the current one.
    previous: Vec<Box<dyn KeyWrapper>>,
    unwrapped: Mutex<HashMap<String, (Arc<DataKey>, Instant)>>,
    active: Mutex<HashMap<String, (String, Instant)>>,
}

impl Keyring {
    pub fn new(master: MasterKey, previous: Vec<MasterKey>) -> Arc<Keyring> {
        Keyring::with_wrappers(
            Box::new(master),
            previous
                .into_iter()
                .map(|key| Box::new(key) as Box<dyn KeyWrapper>)
                .collect(),
        )
    }

    /// A keyring over any [`KeyWrapper`]s (a key management service).
    pub fn with_wrappers(master: Box<dyn KeyWrapper>, previous: Vec<Box<dyn KeyWrapper>>) -> Arc<Keyring> {
        Arc::new(Keyring {
            master,
            previous,
            unwrapped: Mutex::default(),
            active: Mutex::default(),
        })
    }

    /// A keyring with a fresh master key, for tests and tools.
    pub fn ephemeral() -> Arc<Keyring> {
        match MasterKey::generate() {
            Ok(master) => Keyring::new(master, Vec::new()),
            // The system's random source is gone: nothing can be sealed.
            Err(error) => panic!("{error}"),
        }
    }

    pub fn master_key_id(&self) -> &str {
        self.master.id()
    }

    /// A new data key for `agency_id`, wrapped by the current master key.
    pub fn new_data_key(&self, agency_id: &str) -> StoreResult<(WrappedDataKey, Arc<DataKey>)> {
        let id = crate::new_id();
        let bytes: [u8; KEY_LEN] = random_bytes()?;
        let wrapped = self.master.wrap(&bytes, &data_key_aad(&id, agency_id))?;
        let key = SealingKey::new(&bytes).ok_or_else(|| StoreError::Key("cannot build a key".to_owned()))?;
        let data_key = Arc::new(DataKey {
            id: id.clone(),
            agency_id: agency_id.to_owned(),
            key,
        });
        Ok((
            WrappedDataKey {
                id,
                agency_id: agency_id.to_owned(),
                wrapped: Some(b64().encode(wrapped)),
                master_key_id: self.master.id().to_owned(),
            },
            data_key,
        ))
    }

    fn unwrap_bytes(&self, stored: &WrappedDataKey) -> StoreResult<[u8; KEY_LEN]> {
        let Some(wrapped) = &stored.wrapped else {
            return Err(StoreError::Destroyed {
                key_id: stored.id.clone(),
            });
        };
        let master = std::iter::once(&self.master)
            .chain(&self.previous)
            .find(|master| master.id() == stored.master_key_id)
            .ok_or_else(|| {
                StoreError::Key(format!(
                    "data key {} is wrapped by master key {}, which this server does not hold; \
                     every replica needs the same encryption.master_key",
                    stored.id, stored.master_key_id
                ))
            })?;
        let corrupt = || StoreError::Key(format!("data key {} does not unwrap", stored.id));
        let bytes = b64().decode(wrapped).map_err(|_| corrupt())?;
        let plain = master
            .unwrap(&bytes, &data_key_aad(&stored.id, &stored.agency_id))
            .ok_or_else(corrupt)?;
        plain.try_into().map_err(|_| corrupt())
    }

    /// Unwraps a stored data key (and keeps it for later).
    pub fn unwrap(&self, stored: &WrappedDataKey) -> StoreResult<Arc<DataKey>> {
        let bytes = self.unwrap_bytes(stored)?;
        let key = SealingKey::new(&bytes).ok_or_else(|| StoreError::Key("cannot build a key".to_owned()))?;
        let data_key = Arc::new(DataKey {
            id: stored.id.clone(),
            agency_id: stored.agency_id.clone(),
            key,
        });
        self.remember(data_key.clone());
        Ok(data_key)
    }

    /// The same data key wrapped by the current master key.
    pub fn rewrap(&self, stored: &WrappedDataKey) -> StoreResult<WrappedDataKey> {
        let bytes = self.unwrap_bytes(stored)?;
        let wrapped = self
            .master
            .wrap(&bytes, &data_key_aad(&stored.id, &stored.agency_id))?;
        Ok(WrappedDataKey {
            wrapped: Some(b64().encode(wrapped)),
            master_key_id: self.master.id().to_owned(),
            ..stored.clone()
        })
    }

    /// A key unwrapped here less than [`KEY_CACHE_TTL`] ago.
    pub fn cached(&self, key_id: &str) -> Option<Arc<DataKey>> {
        let unwrapped = self.unwrapped.lock().unwrap_or_else(PoisonError::into_inner);
        let (key, at) = unwrapped.get(key_id)?;
        (at.elapsed() <= KEY_CACHE_TTL).then(|| key.clone())
    }

    pub fn remember(&self, key: Arc<DataKey>) {
        let mut unwrapped = self.unwrapped.lock().unwrap_or_else(PoisonError::into_inner);
        if unwrapped.len() > 4_096 {
            unwrapped.retain(|_, (_, at)| at.elapsed() <= KEY_CACHE_TTL);
        }
        unwrapped.insert(key.id.clone(), (key, Instant::now()));
    }

    /// Forgets unwrapped keys (after a destruction or retirement here).
    pub fn forget(&self, key_ids: &[String]) {
        let mut unwrapped = self.unwrapped.lock().unwrap_or_else(PoisonError::into_inner);
        for id in key_ids {
            unwrapped.remove(id);
        }
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, (id, _)| !key_ids.contains(id));
    }

    /// The agency's active key, if looked up recently on this replica.
    pub fn active(&self, agency_id: &str) -> Option<Arc<DataKey>> {
        let id = {
            let active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
            let (id, at) = active.get(agency_id)?;
            if at.elapsed() > KEY_CACHE_TTL {
                return None;
            }
            id.clone()
        };
        self.cached(&id)
    }

    pub fn set_active(&self, key: Arc<DataKey>) {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.agency_id.clone(), (key.id.clone(), Instant::now()));
        self.remember(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_binding() {
        let master = MasterKey::generate().unwrap();
        let master_text = master.to_text();
        let keyring = Keyring::new(master, Vec::new());
        let (stored, key) = keyring.new_data_key("agency-a").unwrap();
        let aad = field_aad("messages", "m1", "content");
        let sealed = key.seal("Jean Dupont, NIR 1 85 05 78 006 084 36", &aad).unwrap();
        assert!(!sealed.contains("Dupont"));
        assert_eq!(
            key.open(&sealed, &aad).unwrap(),
            "Jean Dupont, NIR 1 85 05 78 006 084 36"
        );
        // Moved to another row, it does not open.
        assert!(key
            .open(&sealed, &field_aad("messages", "m2", "content"))
            .is_err());
        // Two seals of the same text differ (fresh nonces).
        assert_ne!(
            sealed,
            key.seal("Jean Dupont, NIR 1 85 05 78 006 084 36", &aad).unwrap()
        );
        // Another agency's key does not open it.
        let (_, other) = keyring.new_data_key("agency-b").unwrap();
        assert!(other.open(&sealed, &aad).is_err());
        // A tampered value does not open.
        let mut bytes = b64().decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(key.open(&b64().encode(bytes), &aad).is_err());
        // The wrapped key unwraps to the same key.
        let fresh = Keyring::new(MasterKey::from_text(&master_text).unwrap(), Vec::new());
        let unwrapped = fresh.unwrap(&stored).unwrap();
        assert_eq!(
            unwrapped.open(&sealed, &aad).unwrap(),
            "Jean Dupont, NIR 1 85 05 78 006 084 36"
        );
    }

    #[test]
    fn master_keys_rotate_and_a_destroyed_key_opens_nothing() {
        let old_master = MasterKey::generate().unwrap();
        let old_text = old_master.to_text();
        let old = Keyring::new(old_master, Vec::new());
        let (stored, key) = old.new_data_key("agency-a").unwrap();
        let sealed = key.seal("text", b"aad").unwrap();
        let new_master = MasterKey::generate().unwrap();
        let new_id = new_master.id().to_owned();
        let new_text = new_master.to_text();
        let both = Keyring::new(new_master, vec![MasterKey::from_text(&old_text).unwrap()]);
        let rewrapped = both.rewrap(&stored).unwrap();
        assert_eq!(rewrapped.master_key_id, new_id);
        let new_only = Keyring::new(MasterKey::from_text(&new_text).unwrap(), Vec::new());
        assert!(matches!(new_only.unwrap(&stored), Err(StoreError::Key(_))));
        assert_eq!(
            new_only
                .unwrap(&rewrapped)
                .unwrap()
                .open(&sealed, b"aad")
                .unwrap(),
            "text"
        );
        let destroyed = WrappedDataKey {
            wrapped: None,
            ..rewrapped
        };
        let fresh = Keyring::new(MasterKey::from_text(&new_text).unwrap(), Vec::new());
        assert!(matches!(
            fresh.unwrap(&destroyed),
            Err(StoreError::Destroyed { .. })
        ));
        // Key text that is not 32 bytes of base64 is refused.
        assert!(MasterKey::from_text("c2hvcnQ=").is_none());
        assert!(MasterKey::from_text("not base64!").is_none());
    }

    /// A stand-in for a key management service: it keeps its key to
    /// itself and counts the calls made to it.
    #[derive(Debug)]
    struct CountingService {
        inner: MasterKey,
        calls: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl KeyWrapper for CountingService {
        fn id(&self) -> &str {
            "kms:projects/agency/keys/civitas"
        }
        fn wrap(&self, key: &[u8], aad: &[u8]) -> StoreResult<Vec<u8>> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            KeyWrapper::wrap(&self.inner, key, aad)
        }
        fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            KeyWrapper::unwrap(&self.inner, wrapped, aad)
        }
    }

    #[test]
    fn any_key_wrapper_can_hold_the_master_key() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let service = Box::new(CountingService {
            inner: MasterKey::generate().unwrap(),
            calls: Arc::clone(&calls),
        });
        let keyring = Keyring::with_wrappers(service, Vec::new());
        let (stored, key) = keyring.new_data_key("agency-a").unwrap();
        assert_eq!(stored.master_key_id, "kms:projects/agency/keys/civitas");
        let sealed = key.seal("text", b"aad").unwrap();
        let unwrapped = keyring.unwrap(&stored).unwrap();
        assert_eq!(unwrapped.open(&sealed, b"aad").unwrap(), "text");
        // One call to wrap, one to unwrap; then the data key is kept in
        // memory: no call per message.
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(keyring.cached(&stored.id).is_some());
    }
}
