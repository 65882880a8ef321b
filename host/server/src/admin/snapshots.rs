//! The admin API's routes for resident snapshots: upload an export to import it, list the
//! kept generations, re-activate one. Only the administrator may call them.

use std::path::PathBuf;

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;

use crate::web::{AppError, AppState};
use oshirase_core::accounts::Caller;
use oshirase_core::import::{
    DEFAULT_MAX_SHRINK_PERCENT, EXPORT_FILES, ImportError, ImportOptions, ImportReport, MAPPING_FILE, import_directory,
};
use oshirase_core::snapshot::SnapshotInfo;

impl From<ImportError> for AppError {
    /// A refused export is 422 with every problem found; the active snapshot is unchanged.
    fn from(error: ImportError) -> AppError {
        match error {
            ImportError::Refused(refused) => AppError::RequestWithDetail(
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({ "error": "import refused, nothing changed", "problems": refused.problems }),
            ),
            ImportError::Failed(error) => AppError::Internal(error),
        }
    }
}

/// How many snapshot generations an import through the API keeps.
const KEEP_GENERATIONS: usize = 3;

#[derive(serde::Deserialize)]
pub struct ImportQuery {
    /// Accept an export with many fewer residents than the active snapshot.
    #[serde(default)]
    allow_shrink: bool,
}

/// `POST /admin/snapshots`: a multipart upload whose parts are named by file (residents.csv
/// or the standard layout's resident_table.csv, any of the other export files, and
/// import.toml; without one, the town's `DATA/import.toml` is the mapping if it exists). Answers the import report, or 422 with every
/// problem when the export is refused; the active snapshot is then unchanged.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ImportQuery>,
    mut multipart: Multipart,
) -> Result<Json<ImportReport>, AppError> {
    caller.must_be_administrator()?;
    let actor = caller.actor;
    let upload = Upload(state.service.data_directory.join("uploads").join(uuid::Uuid::new_v4().to_string()));
    tokio::fs::create_dir_all(&upload.0).await.map_err(anyhow::Error::from)?;
    let mut names = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|error| AppError::Request(StatusCode::BAD_REQUEST, format!("unreadable upload: {error}")))?
    {
        let name = field.name().or(field.file_name()).unwrap_or_default().to_owned();
        if !EXPORT_FILES.contains(&name.as_str()) || names.contains(&name) {
            return Err(AppError::Request(
                StatusCode::BAD_REQUEST,
                format!("unexpected part {name:?}: each of {} may be sent once", EXPORT_FILES.join(", ")),
            ));
        }
        // Written chunk by chunk, so a city's export never sits in memory whole.
        let mut file = tokio::fs::File::create(upload.0.join(&name)).await.map_err(anyhow::Error::from)?;
        while let Some(chunk) = field.chunk().await.map_err(|error| {
            AppError::Request(StatusCode::BAD_REQUEST, format!("upload of {name} broke off: {error}"))
        })? {
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await.map_err(anyhow::Error::from)?;
        }
        names.push(name);
    }
    let options = ImportOptions {
        actor,
        source: format!("upload of {}", names.join(", ")),
        keep_generations: KEEP_GENERATIONS,
        max_shrink_percent: (!query.allow_shrink).then_some(DEFAULT_MAX_SHRINK_PERCENT),
        // The upload's own mapping file, else the town's standing one in its data directory.
        mapping: (!names.iter().any(|name| name == MAPPING_FILE))
            .then(|| state.service.data_directory.join(MAPPING_FILE))
            .filter(|path| path.exists()),
    };
    let directory = upload.0.clone();
    let report = state
        .service
        .database
        .write(move |connection| Ok(import_directory(connection, &directory, &options)))
        .await??;
    Ok(Json(report))
}

/// An upload directory, removed when the request ends however it ends.
struct Upload(PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `GET /admin/snapshots`: the kept generations, newest first.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<SnapshotInfo>>, AppError> {
    caller.must_be_administrator()?;
    Ok(Json(state.service.database.read(oshirase_core::snapshot::list).await?))
}

/// `POST /admin/snapshots/{id}/activate`: makes a kept generation the active one again.
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<SnapshotInfo>>, AppError> {
    caller.must_be_administrator()?;
    let actor = caller.actor;
    let known = state
        .service
        .database
        .read(move |connection| Ok(oshirase_core::snapshot::list(connection)?.iter().any(|snapshot| snapshot.id == id)))
        .await?;
    if !known {
        return Err(AppError::Request(StatusCode::NOT_FOUND, format!("there is no snapshot {id}")));
    }
    let snapshots = state
        .service
        .database
        .write(move |connection| {
            oshirase_core::snapshot::activate(connection, id, &actor)?;
            oshirase_core::snapshot::list(connection)
        })
        .await?;
    Ok(Json(snapshots))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;

    use crate::web::{AppState, app};
    use oshirase_core::accounts::create_token;
    use oshirase_core::service::Service;

    const BOUNDARY: &str = "oshirase-test-boundary";

    /// A server state, the administrator's token and a division's token.
    async fn state(directory: &std::path::Path) -> (AppState, String, String) {
        let service = Service::open(directory, oshirase_bundled::PROGRAMS, &["vaccine-mr".to_owned()]).await.unwrap();
        let tokens = service
            .database
            .write(|connection| {
                Ok((
                    create_token(connection, "情報政策課", &[], true, 30, "test")?,
                    create_token(connection, "健康支援課", &["vaccine-mr".into()], false, 30, "test")?,
                ))
            })
            .await
            .unwrap();
        (AppState::new(service), tokens.0, tokens.1)
    }

    fn multipart(files: &[(&str, &str)]) -> String {
        let mut body = String::new();
        for (name, text) in files {
            body.push_str(&format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\
                 Content-Type: text/csv\r\n\r\n{text}\r\n"
            ));
        }
        body.push_str(&format!("--{BOUNDARY}--\r\n"));
        body
    }

    /// Sends a request and returns the status and the JSON answer.
    async fn send(
        state: &AppState,
        method: &str,
        uri: &str,
        token: Option<&str>,
        files: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"));
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = app(state.clone()).oneshot(request.body(Body::from(multipart(files))).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    const GOOD: &str = "宛名番号,世帯番号,氏名,生年月日,性別,続柄\n\
                        001,H1,千葉 花子,1990-04-01,女,世帯主\n002,H1,千葉 一郎,R7.1.1,男,子\n";

    #[tokio::test]
    async fn an_export_uploaded_by_the_administrator_becomes_the_active_snapshot() {
        let directory = tempfile::tempdir().unwrap();
        let (state, administrator, _) = state(directory.path()).await;
        let (status, report) = send(
            &state,
            "POST",
            "/admin/snapshots",
            Some(&administrator),
            &[("residents.csv", GOOD), ("checkups.csv", "宛名番号,種別,受診日\n002,checkup-18m,2026-08-01\n")],
        )
        .await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["residents"], 2);
        let (status, snapshots) = send(&state, "GET", "/admin/snapshots", Some(&administrator), &[]).await;
        assert_eq!((status, snapshots[0]["active"].clone()), (200, serde_json::Value::Bool(true)), "{snapshots}");
        assert!(
            !directory.path().join("uploads").read_dir().unwrap().any(|_| true),
            "the upload is removed afterwards"
        );
    }

    #[tokio::test]
    async fn a_broken_upload_is_refused_with_every_problem_and_changes_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let (state, administrator, _) = state(directory.path()).await;
        assert_eq!(
            send(&state, "POST", "/admin/snapshots", Some(&administrator), &[("residents.csv", GOOD)]).await.0,
            200
        );
        let broken = GOOD.replace("R7.1.1", "R7.2.30").replace("1990-04-01,女", "1990-04-01,?");
        let (status, answer) =
            send(&state, "POST", "/admin/snapshots", Some(&administrator), &[("residents.csv", &broken)]).await;
        assert_eq!(status, 422, "{answer}");
        let problems: Vec<String> = answer["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|problem| format!("{}:{}:{}", problem["file"], problem["line"], problem["column"]))
            .collect();
        assert_eq!(problems, ["\"residents.csv\":2:5", "\"residents.csv\":3:4"]);
        let (_, snapshots) = send(&state, "GET", "/admin/snapshots", Some(&administrator), &[]).await;
        assert_eq!(snapshots.as_array().unwrap().len(), 1, "{snapshots}");
    }

    #[tokio::test]
    async fn requests_without_the_token_or_with_unknown_parts_are_turned_away() {
        let directory = tempfile::tempdir().unwrap();
        let (state, administrator, division) = state(directory.path()).await;
        let files = [("residents.csv", GOOD)];
        let check = [
            (send(&state, "POST", "/admin/snapshots", None, &files).await, 401),
            (send(&state, "POST", "/admin/snapshots", Some("guess"), &files).await, 401),
            (send(&state, "POST", "/admin/snapshots", Some(&division), &files).await, 403),
            (send(&state, "POST", "/admin/snapshots", Some(&administrator), &[("passwords.txt", "x")]).await, 400),
            (send(&state, "POST", "/admin/snapshots/99/activate", Some(&administrator), &[]).await, 404),
        ];
        for (index, ((status, answer), expected)) in check.into_iter().enumerate() {
            assert_eq!(status, expected, "request {index}: {answer}");
            assert!(answer["error"].as_str().is_some_and(|message| !message.is_empty()), "request {index}: {answer}");
        }
        let (_, snapshots) = send(&state, "GET", "/admin/snapshots", Some(&administrator), &[]).await;
        assert_eq!(snapshots, serde_json::json!([]), "nothing was imported");
    }

    #[tokio::test]
    async fn an_earlier_generation_can_be_made_active_again() {
        let directory = tempfile::tempdir().unwrap();
        let (state, administrator, _) = state(directory.path()).await;
        let (_, first) =
            send(&state, "POST", "/admin/snapshots", Some(&administrator), &[("residents.csv", GOOD)]).await;
        let second = format!("{GOOD}003,H2,佐藤 凛,1980-01-01,女,世帯主\n");
        assert_eq!(
            send(&state, "POST", "/admin/snapshots", Some(&administrator), &[("residents.csv", &second)]).await.0,
            200
        );
        let (status, snapshots) = send(
            &state,
            "POST",
            &format!("/admin/snapshots/{}/activate", first["snapshot_id"]),
            Some(&administrator),
            &[],
        )
        .await;
        assert_eq!(status, 200, "{snapshots}");
        let active: Vec<&serde_json::Value> =
            snapshots.as_array().unwrap().iter().filter(|snapshot| snapshot["active"] == true).collect();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0]["id"], first["snapshot_id"]);
    }
}
