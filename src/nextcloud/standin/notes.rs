//! Notes API v1 (`/index.php/apps/notes/api/v1/notes[/{id}]`, Notes 4.x), in memory,
//! per user. What the reference's notes tools use: list, get, create, update with
//! `If-Match`, delete.
//!
//! Not imitated: chunked listing (`chunkSize` is ignored and `X-Notes-Chunk-Cursor` never
//! sent), the `category`/`exclude`/`pruneBefore` filters, read-only notes (no note is
//! read-only here, so the 403 never happens), attachments.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::auth::{Caller, Via};
use super::state::{StandInState, lock};

#[derive(Clone, Debug)]
struct Note {
    id: u64,
    title: String,
    category: String,
    content: String,
    favorite: bool,
    modified: i64,
}

impl Note {
    /// A stable hash of what a client sees change (Notes uses an MD5 of the same).
    fn etag(&self) -> String {
        let digest = Sha256::digest(
            format!(
                "{}\0{}\0{}\0{}\0{}",
                self.title, self.category, self.favorite, self.modified, self.content
            )
            .as_bytes(),
        );
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    fn to_json(&self) -> Value {
        let dir = if self.category.is_empty() {
            "Notes".to_owned()
        } else {
            format!("Notes/{}", self.category)
        };
        json!({
            "id": self.id,
            "title": self.title,
            "modified": self.modified,
            "category": self.category,
            "favorite": self.favorite,
            "readonly": false,
            "internalPath": format!("/{dir}/{}.md", self.title),
            "shareTypes": [],
            "isShared": false,
            "error": false,
            "errorType": "",
            "content": self.content,
            "etag": self.etag(),
        })
    }
}

/// Every user's notes. Ids are global, like Nextcloud file ids.
#[derive(Default)]
pub(crate) struct NoteStore {
    last_id: u64,
    by_user: HashMap<String, BTreeMap<u64, Note>>,
}

impl NoteStore {
    /// `wanted`, or, when another note of the category has that title, `wanted (2)`, …
    /// (Notes makes file names unique the same way).
    fn unique_title(&self, uid: &str, category: &str, wanted: &str, except: u64) -> String {
        let taken = |t: &str| {
            self.by_user.get(uid).is_some_and(|notes| {
                notes
                    .values()
                    .any(|n| n.id != except && n.category == category && n.title == t)
            })
        };
        let mut title = wanted.to_owned();
        let mut n = 2;
        while taken(&title) {
            title = format!("{wanted} ({n})");
            n += 1;
        }
        title
    }
}

/// The Notes API's refusals.
pub(crate) enum NotesError {
    /// SecurityMiddleware's NotLoggedInException: 401.
    NotLoggedIn,
    /// CORSMiddleware on the `#[CORS]` Notes API: 401.
    CorsRequiresBasic,
    BadId,
    BadBody,
    /// NoteDoesNotExistException: 404.
    NotFound,
    /// `If-Match` is not the current etag: 412 with the current note.
    Stale(Value),
}

impl IntoResponse for NotesError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::NotLoggedIn => (
                StatusCode::UNAUTHORIZED,
                json!({"message": "Current user is not logged in"}),
            ),
            Self::CorsRequiresBasic => (
                StatusCode::UNAUTHORIZED,
                json!({"message": "CORS requires basic auth"}),
            ),
            Self::BadId => (
                StatusCode::BAD_REQUEST,
                json!({"message": "the note id must be a number"}),
            ),
            Self::BadBody => (
                StatusCode::BAD_REQUEST,
                json!({"message": "the body must be a JSON object"}),
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                json!({"errorType": "OCA\\Notes\\Service\\NoteDoesNotExistException"}),
            ),
            Self::Stale(note) => (StatusCode::PRECONDITION_FAILED, note),
        };
        (status, Json(body)).into_response()
    }
}

/// Who may use the Notes API. Not logged in: 401 (SecurityMiddleware). Logged in without
/// `OCS-APIRequest: true` and not by Basic: 401 "CORS requires basic auth" (Nextcloud's
/// CORSMiddleware on the `#[CORS]` Notes API: it logs the session out and only a Basic
/// login with valid credentials gets it back).
fn notes_user(caller: &Caller) -> Result<String, NotesError> {
    let login = caller.login.as_ref().ok_or(NotesError::NotLoggedIn)?;
    if !caller.ocs_api_request && !matches!(login.via, Via::BasicAppPassword(_)) {
        return Err(NotesError::CorsRequiresBasic);
    }
    Ok(login.uid.clone())
}

/// The note id of a path: digits only, else 400.
fn note_id(raw: &str) -> Result<u64, NotesError> {
    raw.parse::<u64>().map_err(|_| NotesError::BadId)
}

/// The JSON body as an object; an empty body is `{}`, anything else not an object is 400.
fn body_fields(body: &Bytes) -> Result<serde_json::Map<String, Value>, NotesError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Default::default());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(NotesError::BadBody),
    }
}

fn str_field(fields: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    fields.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// A title from the content's first non-empty line, as Notes does for untitled notes.
fn title_from_content(content: &str) -> String {
    content
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(100).collect())
        .unwrap_or_else(|| "New note".to_owned())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

type NotesResult = Result<Json<Value>, NotesError>;

/// `GET …/notes`: a bare array of the user's notes.
pub(crate) async fn list(
    State(state): State<Arc<StandInState>>,
    Extension(caller): Extension<Caller>,
) -> NotesResult {
    let uid = notes_user(&caller)?;
    let store = lock(&state.notes);
    let notes: Vec<Value> = store
        .by_user
        .get(&uid)
        .map(|n| n.values().map(Note::to_json).collect())
        .unwrap_or_default();
    Ok(Json(Value::Array(notes)))
}

/// `POST …/notes` with `{title?, content?, category?, favorite?, modified?}`: 200 (not
/// 201) and the new note.
pub(crate) async fn create(
    State(state): State<Arc<StandInState>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> NotesResult {
    let uid = notes_user(&caller)?;
    let fields = body_fields(&body)?;
    let content = str_field(&fields, "content").unwrap_or_default();
    let category = str_field(&fields, "category").unwrap_or_default();
    let wanted = str_field(&fields, "title")
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| title_from_content(&content));
    let mut store = lock(&state.notes);
    store.last_id += 1;
    let note = Note {
        id: store.last_id,
        title: store.unique_title(&uid, &category, &wanted, 0),
        category,
        content,
        favorite: fields
            .get("favorite")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        modified: fields
            .get("modified")
            .and_then(Value::as_i64)
            .unwrap_or_else(now),
    };
    let answer = note.to_json();
    store.by_user.entry(uid).or_default().insert(note.id, note);
    Ok(Json(answer))
}

/// `GET …/notes/{id}`.
pub(crate) async fn get(
    State(state): State<Arc<StandInState>>,
    Extension(caller): Extension<Caller>,
    Path(raw_id): Path<String>,
) -> NotesResult {
    let uid = notes_user(&caller)?;
    let id = note_id(&raw_id)?;
    let store = lock(&state.notes);
    let note = store.by_user.get(&uid).and_then(|n| n.get(&id));
    Ok(Json(note.ok_or(NotesError::NotFound)?.to_json()))
}

/// `PUT …/notes/{id}` with any of `{title, content, category, favorite, modified}`.
/// `If-Match: "<etag>"` that is not the note's current etag: 412 with the current note.
pub(crate) async fn update(
    State(state): State<Arc<StandInState>>,
    Extension(caller): Extension<Caller>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> NotesResult {
    let uid = notes_user(&caller)?;
    let id = note_id(&raw_id)?;
    let fields = body_fields(&body)?;
    let mut store = lock(&state.notes);
    let mut note = store
        .by_user
        .get(&uid)
        .and_then(|n| n.get(&id))
        .cloned()
        .ok_or(NotesError::NotFound)?;
    if let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        let wanted = wanted.trim().trim_start_matches("W/").trim_matches('"');
        if wanted != note.etag() {
            return Err(NotesError::Stale(note.to_json()));
        }
    }
    if let Some(content) = str_field(&fields, "content") {
        note.content = content;
    }
    if let Some(category) = str_field(&fields, "category") {
        note.category = category;
    }
    let wanted = str_field(&fields, "title")
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| note.title.clone());
    note.title = store.unique_title(&uid, &note.category, &wanted, id);
    if let Some(favorite) = fields.get("favorite").and_then(Value::as_bool) {
        note.favorite = favorite;
    }
    note.modified = fields
        .get("modified")
        .and_then(Value::as_i64)
        .unwrap_or_else(now);
    let answer = note.to_json();
    store.by_user.entry(uid).or_default().insert(id, note);
    Ok(Json(answer))
}

/// `DELETE …/notes/{id}`: 200 `[]`.
pub(crate) async fn delete(
    State(state): State<Arc<StandInState>>,
    Extension(caller): Extension<Caller>,
    Path(raw_id): Path<String>,
) -> NotesResult {
    let uid = notes_user(&caller)?;
    let id = note_id(&raw_id)?;
    let mut store = lock(&state.notes);
    store
        .by_user
        .get_mut(&uid)
        .and_then(|n| n.remove(&id))
        .ok_or(NotesError::NotFound)?;
    Ok(Json(json!([])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untitled_notes_take_their_first_line() {
        assert_eq!(title_from_content("\n# Shopping\nmilk"), "Shopping");
        assert_eq!(title_from_content("  "), "New note");
    }

    #[test]
    fn titles_are_made_unique_within_a_category() {
        let mut store = NoteStore::default();
        let note = |id, title: &str| Note {
            id,
            title: title.into(),
            category: String::new(),
            content: String::new(),
            favorite: false,
            modified: 0,
        };
        let notes = store.by_user.entry("u".into()).or_default();
        notes.insert(1, note(1, "A"));
        notes.insert(2, note(2, "A (2)"));
        assert_eq!(store.unique_title("u", "", "A", 0), "A (3)");
        assert_eq!(store.unique_title("u", "", "A", 1), "A");
        assert_eq!(store.unique_title("u", "work", "A", 0), "A");
        assert_eq!(store.unique_title("v", "", "A", 0), "A");
    }
}
