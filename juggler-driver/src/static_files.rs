//! Static files: a folder that hands out only what is inside it, and the
//! answers to `GET` and `HEAD` for its files, written once for every
//! runtime.
//!
//! tower-http's `ServeDir` would do on tokio, but it reads through
//! `tokio::fs` and so cannot serve on smol, and it sends no `ETag`. One
//! implementation gives both runtimes the same answers: streamed bodies,
//! single byte ranges (`206`, `416`), `ETag` and `Last-Modified` with
//! `304`, and `Content-Length` on `HEAD`. File system calls run on the
//! runtime's blocking threads.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body::{Frame, SizeHint};

use crate::runtime::{unblock, Runtime};

/// How much of a file one blocking read takes.
const CHUNK: u64 = 64 * 1024;

/// A static file folder that hands out only paths inside it.
#[derive(Debug, Clone)]
pub struct StaticDir {
    root: PathBuf,
}

impl StaticDir {
    /// The folder, which must exist.
    pub fn new(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        Ok(StaticDir {
            root: dir.as_ref().canonicalize()?,
        })
    }

    /// The folder's canonical path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a request path names, if it is a file inside the folder.
    ///
    /// The path is percent-decoded first; `..`, encoded `%2e%2e`, NUL,
    /// backslashes and symbolic links that lead outside the folder all give
    /// `None`. A folder names its `index.html`.
    pub fn resolve(&self, request_path: &str) -> Option<PathBuf> {
        self.locate(request_path).map(|(path, _)| path)
    }

    /// The file a request path names, and whether the path named its
    /// folder.
    fn locate(&self, request_path: &str) -> Option<(PathBuf, bool)> {
        let decoded = percent_encoding::percent_decode_str(request_path)
            .decode_utf8()
            .ok()?;
        if decoded.contains('\0') || decoded.contains('\\') {
            return None;
        }
        let relative = Path::new(decoded.trim_start_matches('/'));
        if relative
            .components()
            .any(|part| !matches!(part, Component::Normal(_) | Component::CurDir))
        {
            return None;
        }
        let mut path = self.root.join(relative).canonicalize().ok()?;
        let folder = path.is_dir();
        if folder {
            path = path.join("index.html").canonicalize().ok()?;
        }
        (path.starts_with(&self.root) && path.is_file()).then_some((path, folder))
    }
}

impl StaticDir {
    /// Answers a request for one of the folder's files: `200` with the
    /// file streamed, `206` for a satisfiable single `Range`, `304` when
    /// the client's copy is current (`If-None-Match`, `If-Modified-Since`),
    /// `416` for a range past the end; a folder named without its
    /// trailing slash is redirected (`307`) to the path with it. Anything else, another method or a
    /// path [`resolve`](Self::resolve) refuses, is `404`.
    ///
    /// It takes the request's head (`Request::into_parts`): a request body
    /// is not needed, and bodies need not be `Sync`.
    pub async fn serve(&self, request: &Parts, runtime: Arc<dyn Runtime>) -> Response<FileBody> {
        if !matches!(request.method, Method::GET | Method::HEAD) {
            return not_found();
        }
        let (dir, path) = (self.clone(), request.uri.path().to_owned());
        let (file, facts) = match unblock(&*runtime, move || dir.open(&path)).await.flatten() {
            Some(Opened::File(file, facts)) => (file, facts),
            Some(Opened::FolderWithoutSlash) => return to_folder(&request.uri),
            None => return not_found(),
        };
        let answer = Answer::new(&request.method, &request.headers, &facts);
        let body = match answer.bytes {
            Some(bytes) => FileBody::new(file, bytes, runtime),
            None => FileBody::empty(),
        };
        let mut response = Response::new(body);
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        response
    }

    fn open(&self, request_path: &str) -> Option<Opened> {
        let (path, folder) = self.locate(request_path)?;
        if folder && !request_path.ends_with('/') {
            return Some(Opened::FolderWithoutSlash);
        }
        let file = File::open(&path).ok()?;
        let metadata = file.metadata().ok()?;
        let facts = FileFacts {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            content_type: mime_guess::from_path(&path)
                .first_or_octet_stream()
                .to_string(),
        };
        Some(Opened::File(file, facts))
    }
}

/// What a request path opened.
enum Opened {
    File(File, FileFacts),
    /// A folder named without its trailing slash: its `index.html` would
    /// resolve relative links against the parent.
    FolderWithoutSlash,
}

/// The redirect from `/folder` to `/folder/`, query kept (as tower-http's
/// `ServeDir` does).
fn to_folder(uri: &http::Uri) -> Response<FileBody> {
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    let mut response = Response::new(FileBody::empty());
    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn not_found() -> Response<FileBody> {
    let mut response = Response::new(FileBody::empty());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// What an answer depends on besides the request.
#[derive(Debug, Clone)]
struct FileFacts {
    len: u64,
    modified: Option<SystemTime>,
    content_type: String,
}

impl FileFacts {
    /// A strong validator: the file's size and modification time, so it
    /// changes whenever either does (as nginx makes its `ETag`s).
    fn etag(&self) -> Option<String> {
        let since_epoch = self.modified?.duration_since(UNIX_EPOCH).ok()?;
        Some(format!("\"{:x}-{:x}\"", since_epoch.as_nanos(), self.len))
    }

    /// The modification time in whole seconds, as HTTP dates have it.
    fn modified_secs(&self) -> Option<u64> {
        Some(self.modified?.duration_since(UNIX_EPOCH).ok()?.as_secs())
    }
}

/// The status, headers and byte range of one file's answer, decided from
/// the request's headers and the file's facts alone.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    /// The bytes of the file the body carries; `None` for no body.
    bytes: Option<Range<u64>>,
}

impl Answer {
    fn new(method: &Method, request: &HeaderMap, file: &FileFacts) -> Self {
        let etag = file.etag();
        let mut headers = HeaderMap::new();
        if let Some(etag) = etag
            .as_deref()
            .and_then(|tag| HeaderValue::from_str(tag).ok())
        {
            headers.insert(header::ETAG, etag);
        }
        if let Some(modified) = file.modified {
            let date = httpdate::fmt_http_date(modified);
            if let Ok(date) = HeaderValue::from_str(&date) {
                headers.insert(header::LAST_MODIFIED, date);
            }
        }
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if not_modified(request, etag.as_deref(), file.modified_secs()) {
            // The length a 200 would have (RFC 9110 §8.6): without it, a
            // server's HTTP layer may add a `0` of the empty body.
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.len));
            return Answer {
                status: StatusCode::NOT_MODIFIED,
                headers,
                bytes: None,
            };
        }
        let content_type = HeaderValue::from_str(&file.content_type).ok();
        let (status, bytes) = match requested_range(method, request, etag.as_deref(), file) {
            RangeAnswer::Whole => {
                headers.extend(content_type.map(|value| (header::CONTENT_TYPE, value)));
                (StatusCode::OK, 0..file.len)
            }
            RangeAnswer::Part(part) => {
                headers.extend(content_type.map(|value| (header::CONTENT_TYPE, value)));
                let range = format!("bytes {}-{}/{}", part.start, part.end - 1, file.len);
                if let Ok(range) = HeaderValue::from_str(&range) {
                    headers.insert(header::CONTENT_RANGE, range);
                }
                (StatusCode::PARTIAL_CONTENT, part)
            }
            RangeAnswer::Unsatisfiable => {
                let range = format!("bytes */{}", file.len);
                if let Ok(range) = HeaderValue::from_str(&range) {
                    headers.insert(header::CONTENT_RANGE, range);
                }
                (StatusCode::RANGE_NOT_SATISFIABLE, 0..0)
            }
        };
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(bytes.end - bytes.start),
        );
        Answer {
            status,
            headers,
            bytes: (method == Method::GET).then_some(bytes),
        }
    }
}

/// Whether the client's copy is current: `If-None-Match` decides when
/// present (weak comparison, `*` matches any), else `If-Modified-Since`
/// (RFC 9110 §13.2.2).
fn not_modified(request: &HeaderMap, etag: Option<&str>, modified_secs: Option<u64>) -> bool {
    if let Some(wanted) = request.get(header::IF_NONE_MATCH) {
        let (Ok(wanted), Some(etag)) = (wanted.to_str(), etag) else {
            return false;
        };
        return wanted
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    }
    let since = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| httpdate::parse_http_date(value).ok())
        .and_then(|since| since.duration_since(UNIX_EPOCH).ok());
    matches!((since, modified_secs), (Some(since), Some(modified)) if modified <= since.as_secs())
}

/// What a `Range` header asks of a file.
#[derive(Debug, PartialEq)]
enum RangeAnswer {
    /// No usable range: no header, a method other than `GET`, a stale
    /// `If-Range`, bad syntax or several ranges (which a server may
    /// ignore, RFC 9110 §14.2): the whole file.
    Whole,
    /// One satisfiable range, end exclusive.
    Part(Range<u64>),
    /// A range that starts past the end, or ends before it starts.
    Unsatisfiable,
}

fn requested_range(
    method: &Method,
    request: &HeaderMap,
    etag: Option<&str>,
    file: &FileFacts,
) -> RangeAnswer {
    let range = request
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok());
    let (true, Some(range)) = (method == Method::GET, range) else {
        return RangeAnswer::Whole;
    };
    if !if_range_holds(request, etag, file.modified_secs()) {
        return RangeAnswer::Whole;
    }
    let Ok(parsed) = http_range_header::parse_range_header(range) else {
        return RangeAnswer::Whole;
    };
    match parsed.validate(file.len).as_deref() {
        Ok([one]) => RangeAnswer::Part(*one.start()..*one.end() + 1),
        Ok(_) => RangeAnswer::Whole,
        Err(_) => RangeAnswer::Unsatisfiable,
    }
}

/// Whether `If-Range`, if sent, still names this file: a strong `ETag`
/// equal to ours, or exactly our `Last-Modified` date.
fn if_range_holds(request: &HeaderMap, etag: Option<&str>, modified_secs: Option<u64>) -> bool {
    let Some(condition) = request.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(condition) = condition.to_str() else {
        return false;
    };
    if condition.starts_with('"') {
        return Some(condition) == etag;
    }
    let date = httpdate::parse_http_date(condition)
        .ok()
        .and_then(|date| date.duration_since(UNIX_EPOCH).ok());
    matches!((date, modified_secs), (Some(date), Some(modified)) if date.as_secs() == modified)
}

type Reading = Pin<Box<dyn Future<Output = Option<(File, io::Result<Bytes>)>> + Send>>;

/// A file's bytes as an HTTP body, read in chunks of 64 KiB on the
/// runtime's blocking threads as the connection takes them.
pub struct FileBody {
    file: Option<File>,
    /// The next byte to read, and the end of the range (exclusive).
    position: u64,
    end: u64,
    reading: Option<Reading>,
    runtime: Option<Arc<dyn Runtime>>,
}

impl std::fmt::Debug for FileBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBody")
            .field("position", &self.position)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl FileBody {
    fn new(file: File, bytes: Range<u64>, runtime: Arc<dyn Runtime>) -> Self {
        FileBody {
            file: Some(file),
            position: bytes.start,
            end: bytes.end,
            reading: None,
            runtime: Some(runtime),
        }
    }

    /// A body of no bytes.
    pub fn empty() -> Self {
        FileBody {
            file: None,
            position: 0,
            end: 0,
            reading: None,
            runtime: None,
        }
    }

    fn start_reading(&mut self) -> Option<Reading> {
        let (mut file, runtime) = (self.file.take()?, self.runtime.clone()?);
        let (position, wanted) = (self.position, (self.end - self.position).min(CHUNK));
        Some(Box::pin(async move {
            unblock(&*runtime, move || {
                let read = read_chunk(&mut file, position, wanted);
                (file, read)
            })
            .await
        }))
    }
}

fn read_chunk(file: &mut File, position: u64, wanted: u64) -> io::Result<Bytes> {
    file.seek(SeekFrom::Start(position))?;
    let mut chunk = Vec::with_capacity(wanted as usize);
    file.take(wanted).read_to_end(&mut chunk)?;
    if chunk.is_empty() {
        // The file shrank after its length was sent.
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Bytes::from(chunk))
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.reading.is_none() {
            if this.position >= this.end {
                return Poll::Ready(None);
            }
            this.reading = this.start_reading();
        }
        let Some(reading) = &mut this.reading else {
            return Poll::Ready(None);
        };
        let read = ready!(reading.as_mut().poll(cx));
        this.reading = None;
        Poll::Ready(Some(match read {
            Some((file, Ok(chunk))) => {
                this.position += chunk.len() as u64;
                this.file = Some(file);
                Ok(Frame::data(chunk))
            }
            Some((_, Err(err))) => {
                this.end = this.position;
                Err(err)
            }
            None => {
                this.end = this.position;
                Err(io::Error::other("the file read stopped"))
            }
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.reading.is_none() && self.position >= self.end
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.end.saturating_sub(self.position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> FileFacts {
        FileFacts {
            len: 10,
            modified: Some(UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
            content_type: "text/plain".into(),
        }
    }

    fn answer(method: Method, request: &[(header::HeaderName, &str)]) -> Answer {
        let mut headers = HeaderMap::new();
        for (name, value) in request {
            headers.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        Answer::new(&method, &headers, &file())
    }

    fn header_of(answer: &Answer, name: header::HeaderName) -> Option<&str> {
        answer
            .headers
            .get(name)
            .map(|value| value.to_str().unwrap())
    }

    const MODIFIED: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    #[test]
    fn whole_file_with_validators() {
        let whole = answer(Method::GET, &[]);
        assert_eq!(whole.status, StatusCode::OK);
        assert_eq!(whole.bytes, Some(0..10));
        assert_eq!(header_of(&whole, header::CONTENT_LENGTH), Some("10"));
        assert_eq!(header_of(&whole, header::CONTENT_TYPE), Some("text/plain"));
        assert_eq!(header_of(&whole, header::LAST_MODIFIED), Some(MODIFIED));
        assert_eq!(header_of(&whole, header::ACCEPT_RANGES), Some("bytes"));
        assert_eq!(
            header_of(&whole, header::ETAG),
            file().etag().as_deref(),
            "a strong tag of size and time"
        );
        let head = answer(Method::HEAD, &[(header::RANGE, "bytes=0-1")]);
        assert_eq!(head.status, StatusCode::OK, "HEAD ignores Range");
        assert_eq!(head.bytes, None);
        assert_eq!(header_of(&head, header::CONTENT_LENGTH), Some("10"));
    }

    #[test]
    fn current_copies_get_304() {
        let etag = file().etag().unwrap();
        for request in [
            vec![(header::IF_NONE_MATCH, etag.as_str())],
            vec![(header::IF_NONE_MATCH, "*")],
            vec![(header::IF_NONE_MATCH, &format!("\"other\", W/{etag}"))],
            vec![(header::IF_MODIFIED_SINCE, MODIFIED)],
            vec![(header::IF_MODIFIED_SINCE, "Wed, 15 Nov 2023 00:00:00 GMT")],
        ] {
            let current = answer(Method::GET, &request);
            assert_eq!(current.status, StatusCode::NOT_MODIFIED, "{request:?}");
            assert_eq!(current.bytes, None);
            assert_eq!(header_of(&current, header::ETAG), Some(etag.as_str()));
            assert_eq!(header_of(&current, header::CONTENT_LENGTH), Some("10"));
            assert_eq!(header_of(&current, header::CONTENT_TYPE), None);
        }
        for request in [
            vec![(header::IF_NONE_MATCH, "\"other\"")],
            vec![(header::IF_MODIFIED_SINCE, "Mon, 13 Nov 2023 00:00:00 GMT")],
            vec![(header::IF_MODIFIED_SINCE, "yesterday")],
            // If-None-Match decides when both are sent.
            vec![
                (header::IF_NONE_MATCH, "\"other\""),
                (header::IF_MODIFIED_SINCE, MODIFIED),
            ],
        ] {
            assert_eq!(
                answer(Method::GET, &request).status,
                StatusCode::OK,
                "{request:?}"
            );
        }
    }

    #[test]
    fn ranges() {
        let cases: [(&str, StatusCode, Range<u64>, Option<&str>); 8] = [
            (
                "bytes=2-4",
                StatusCode::PARTIAL_CONTENT,
                2..5,
                Some("bytes 2-4/10"),
            ),
            (
                "bytes=7-",
                StatusCode::PARTIAL_CONTENT,
                7..10,
                Some("bytes 7-9/10"),
            ),
            (
                "bytes=-3",
                StatusCode::PARTIAL_CONTENT,
                7..10,
                Some("bytes 7-9/10"),
            ),
            (
                "bytes=5-100",
                StatusCode::PARTIAL_CONTENT,
                5..10,
                Some("bytes 5-9/10"),
            ),
            (
                "bytes=10-",
                StatusCode::RANGE_NOT_SATISFIABLE,
                0..0,
                Some("bytes */10"),
            ),
            ("bytes=0-1,4-5", StatusCode::OK, 0..10, None),
            (
                "bytes=4-2",
                StatusCode::RANGE_NOT_SATISFIABLE,
                0..0,
                Some("bytes */10"),
            ),
            ("pages=1-2", StatusCode::OK, 0..10, None),
        ];
        for (range, status, bytes, content_range) in cases {
            let ranged = answer(Method::GET, &[(header::RANGE, range)]);
            assert_eq!(ranged.status, status, "{range}");
            assert_eq!(ranged.bytes, Some(bytes.clone()), "{range}");
            assert_eq!(
                header_of(&ranged, header::CONTENT_RANGE),
                content_range,
                "{range}"
            );
            let typed = status != StatusCode::RANGE_NOT_SATISFIABLE;
            assert_eq!(
                header_of(&ranged, header::CONTENT_TYPE).is_some(),
                typed,
                "{range}"
            );
            let length = (bytes.end - bytes.start).to_string();
            assert_eq!(
                header_of(&ranged, header::CONTENT_LENGTH),
                Some(length.as_str())
            );
        }
    }

    #[test]
    fn if_range_keeps_a_range_only_for_the_same_file() {
        let etag = file().etag().unwrap();
        for (condition, status) in [
            (etag.as_str(), StatusCode::PARTIAL_CONTENT),
            (MODIFIED, StatusCode::PARTIAL_CONTENT),
            ("\"other\"", StatusCode::OK),
            (&format!("W/{etag}"), StatusCode::OK),
            ("Mon, 13 Nov 2023 00:00:00 GMT", StatusCode::OK),
        ] {
            let ranged = answer(
                Method::GET,
                &[(header::RANGE, "bytes=0-1"), (header::IF_RANGE, condition)],
            );
            assert_eq!(ranged.status, status, "{condition}");
        }
    }

    /// Runs blocking work inline: all a [`FileBody`] needs of a runtime.
    struct InlineRuntime;

    impl Runtime for InlineRuntime {
        fn spawn(&self, _: crate::BoxFuture) {
            unreachable!("a file body spawns nothing")
        }
        fn now(&self) -> std::time::Instant {
            unreachable!("a file body reads no clock")
        }
        fn sleep_until(&self, _: std::time::Instant) -> crate::BoxFuture {
            unreachable!("a file body sets no timer")
        }
        fn unblock(&self, work: Box<dyn FnOnce() + Send + 'static>) -> crate::BoxFuture {
            work();
            Box::pin(async {})
        }
        fn connect_tcp(&self, _: String, _: u16) -> crate::TcpConnecting {
            unreachable!("a file body connects nowhere")
        }
    }

    #[test]
    fn body_streams_the_range_in_chunks() {
        use http_body::Body;
        use http_body_util::BodyExt;
        let path = std::env::temp_dir().join(format!("juggler-body-{}", std::process::id()));
        let content: Vec<u8> = (0..CHUNK * 2 + 100).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let range = 10..CHUNK * 2 + 50;
        let mut body = FileBody::new(
            File::open(&path).unwrap(),
            range.clone(),
            Arc::new(InlineRuntime),
        );
        assert_eq!(body.size_hint().exact(), Some(range.end - range.start));
        let mut chunks = Vec::new();
        let mut streamed = Vec::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            while let Some(frame) = body.frame().await {
                let chunk = frame.unwrap().into_data().unwrap();
                chunks.push(chunk.len() as u64);
                streamed.extend_from_slice(&chunk);
            }
        });
        assert!(body.is_end_stream());
        assert_eq!(chunks, [CHUNK, CHUNK, 40]);
        assert_eq!(streamed, content[10..(CHUNK * 2 + 50) as usize]);
        std::fs::remove_file(&path).unwrap();
    }
    #[test]
    fn static_dir_serves_only_what_is_inside() {
        let base = std::env::temp_dir().join(format!("juggler-static-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "index").unwrap();
        std::fs::write(root.join("sub/a b.txt"), "a").unwrap();
        std::fs::write(base.join("secret.txt"), "secret").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("link.txt")).unwrap();
        let dir = StaticDir::new(&root).unwrap();
        assert_eq!(
            dir.resolve("/index.html"),
            Some(dir.root().join("index.html"))
        );
        assert_eq!(dir.resolve("/"), Some(dir.root().join("index.html")));
        assert_eq!(
            dir.resolve("/sub/a%20b.txt"),
            Some(dir.root().join("sub/a b.txt"))
        );
        for escape in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/sub/../../secret.txt",
            "/link.txt",
            "/..%5csecret.txt",
            "/missing.txt",
            "/%00",
            "/%ff",
        ] {
            assert_eq!(dir.resolve(escape), None, "{escape}");
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
