//! IAM's token endpoint (`POST /v3/auth/tokens`, password method).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::sim::faults::Operation;
use crate::sim::http::{Incoming, json_response};
use crate::sim::respond::respond;
use crate::sim::shared::Shared;
use crate::sim::wire::iam_error_body;

/// The parts of a password-method token request the stand-in checks.
struct PasswordAuth {
    domain: String,
    user: String,
    password: String,
    project_id: Option<String>,
    project_name: Option<String>,
}

fn parse_password_auth(body: &Value) -> Option<PasswordAuth> {
    let identity = &body["auth"]["identity"];
    let uses_password = identity["methods"]
        .as_array()?
        .iter()
        .any(|m| m == "password");
    if !uses_password {
        return None;
    }
    let user = &identity["password"]["user"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let project = &body["auth"]["scope"]["project"];
    Some(PasswordAuth {
        domain: text(&user["domain"]["name"])?,
        user: text(&user["name"])?,
        password: text(&user["password"])?,
        project_id: text(&project["id"]),
        project_name: text(&project["name"]),
    })
}

pub async fn iam_token(State(shared): State<Arc<Shared>>, req: Incoming) -> Response {
    let iam_error = |status: StatusCode, message: &str| {
        let title = status.canonical_reason().unwrap_or("Error");
        json_response(status, &iam_error_body(status.as_u16(), title, message))
    };
    let parsed = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .as_ref()
        .and_then(parse_password_auth);
    let Some(auth) = parsed else {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "The request body must use the password method with user name, password and domain name.",
        );
    };
    let (fault, project) = {
        let mut state = shared.state();
        if !state
            .creds
            .password_matches(&auth.domain, &auth.user, &auth.password)
        {
            return iam_error(
                StatusCode::UNAUTHORIZED,
                "The username or password is wrong.",
            );
        }
        let project = match (&auth.project_id, &auth.project_name) {
            (None, None) => None,
            (Some(id), _) if *id == state.project_id => {
                Some((state.project_id.clone(), state.project_name.clone()))
            }
            (None, Some(name)) if *name == state.project_name => {
                Some((state.project_id.clone(), state.project_name.clone()))
            }
            _ => {
                return iam_error(
                    StatusCode::BAD_REQUEST,
                    "The project in the scope does not exist.",
                );
            }
        };
        (state.faults.next(Operation::IamToken), project)
    };
    let work_shared = shared.clone();
    let work = move || {
        let token = format!(
            "MIIsim{}{}",
            work_shared.ids.next_hex(),
            work_shared.ids.next_hex()
        );
        let now = Timestamp::now();
        let expires_at = work_shared.state().issue_token(
            token.clone(),
            project.as_ref().map(|(id, _)| id.clone()),
            now,
        );
        let mut body = json!({"token": {
            "expires_at": iam_time(expires_at),
            "issued_at": iam_time(now),
            "methods": ["password"],
            "user": {"name": auth.user, "domain": {"name": auth.domain}},
        }});
        if let Some((id, name)) = project {
            body["token"]["project"] = json!({"id": id, "name": name});
        }
        let mut response = json_response(StatusCode::CREATED, &body);
        match HeaderValue::from_str(&token) {
            Ok(value) => {
                response.headers_mut().insert("x-subject-token", value);
                response
            }
            // The token is built from hex digits above, so it is always a valid header value.
            Err(_) => iam_error(StatusCode::INTERNAL_SERVER_ERROR, "token encoding failed"),
        }
    };
    respond(&shared, &req.request_id, fault, work).await
}

/// IAM's timestamp format: `2026-11-29T10:00:00.000000Z`.
fn iam_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_times_have_microseconds_and_a_z() {
        let at: Timestamp = "2026-11-29T10:00:00.5Z".parse().unwrap();
        assert_eq!(iam_time(at), "2026-11-29T10:00:00.500000Z");
    }

    #[test]
    fn password_auth_needs_every_field_and_reads_the_project_scope() {
        let body = json!({"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"name": "u", "password": "p", "domain": {"name": "d"}}}},
            "scope": {"project": {"name": "eu-de"}}}});
        let auth = parse_password_auth(&body).unwrap();
        assert_eq!(
            (
                auth.domain.as_str(),
                auth.user.as_str(),
                auth.password.as_str()
            ),
            ("d", "u", "p")
        );
        assert_eq!(auth.project_name.as_deref(), Some("eu-de"));
        assert_eq!(auth.project_id, None);
        let mut no_password = body.clone();
        no_password["auth"]["identity"]["methods"] = json!(["token"]);
        assert!(parse_password_auth(&no_password).is_none());
        let mut no_domain = body;
        no_domain["auth"]["identity"]["password"]["user"]["domain"] = json!({});
        assert!(parse_password_auth(&no_domain).is_none());
    }
}
