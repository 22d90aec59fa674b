//! The workspace as a browser sees it, for tests: a client that does not
//! follow redirects, cookies, forms and their CSRF tokens, and signing in
//! (rules of behaviour accepted) through the real forms.

use reqwest::Response;

use crate::TestApp;

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of `name` in the response's `Set-Cookie` headers.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
}

/// The value of the first hidden input called `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in the page"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The hidden CSRF token of a page's form.
pub fn form_token(html: &str) -> String {
    hidden(html, "csrf_token")
}

/// A signed-in browser session.
#[derive(Debug, Clone)]
pub struct Session {
    /// `civitas_session=...`, for the `Cookie` header.
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    pub async fn get(&self, app: &TestApp, path: &str) -> Response {
        client()
            .get(app.url(path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// Posts a form with the session's CSRF token added.
    pub async fn post(&self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> Response {
        let mut fields = vec![("csrf_token", self.csrf.as_str())];
        fields.extend_from_slice(form);
        client()
            .post(app.url(path))
            .header("cookie", &self.cookie)
            .form(&fields)
            .send()
            .await
            .unwrap()
    }

    /// Like [`Session::post`], asking for the answer as a stream.
    pub async fn post_streaming(&self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> Response {
        let mut fields = vec![("csrf_token", self.csrf.as_str())];
        fields.extend_from_slice(form);
        client()
            .post(app.url(path))
            .header("cookie", &self.cookie)
            .header("x-civitas-stream", "1")
            .form(&fields)
            .send()
            .await
            .unwrap()
    }
}

/// Signs `email` in through the sign-in form, without accepting the rules
/// of behaviour; returns the session cookie's value.
pub async fn sign_in_only(app: &TestApp, email: &str, password: &str) -> String {
    let browser = client();
    let page = browser.get(app.url("/sign-in")).send().await.unwrap();
    let form_cookie = set_cookie(&page, "civitas_signin_csrf").unwrap();
    let token = form_token(&page.text().await.unwrap());
    let signed_in = browser
        .post(app.url("/sign-in"))
        .header("cookie", format!("civitas_signin_csrf={form_cookie}"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "sign-in refused for {email}");
    set_cookie(&signed_in, "civitas_session").unwrap()
}

/// Signs `email` in and accepts the rules of behaviour, as a person does
/// on first sign-in.
pub async fn sign_in(app: &TestApp, email: &str, password: &str) -> Session {
    let cookie = format!("civitas_session={}", sign_in_only(app, email, password).await);
    let rules = client()
        .get(app.url("/rules"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_token(&rules);
    let session = Session { cookie, csrf };
    if rules.contains("name=\"version\"") {
        let version = hidden(&rules, "version");
        let accepted = session
            .post(app, "/rules", &[("version", &version), ("agree", "yes")])
            .await;
        assert_eq!(accepted.headers()["location"], "/");
    }
    session
}
