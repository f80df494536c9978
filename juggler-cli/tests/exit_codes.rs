//! Exit codes that need no peer: 2 (no connection), 64 (bad input, named),
//! 0 for help and completions.

mod support;

use support::run;

#[tokio::test]
async fn nothing_listening_exits_2() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("ws://127.0.0.1:{port}/ws");
    for args in [
        vec!["call", url.as_str(), "x"],
        vec!["watch", url.as_str()],
        vec!["send", url.as_str(), "1"],
    ] {
        let failed = run(&args).await;
        assert_eq!(failed.code, Some(2), "{args:?}: {failed:?}");
        assert!(failed.stderr.contains("juggler:"), "{failed:?}");
    }
}

#[tokio::test]
async fn bad_input_exits_64_naming_the_argument() {
    let url = "ws://127.0.0.1:9/ws";
    for (args, named) in [
        (vec!["call", "http://127.0.0.1/ws", "x"], "<URL>"),
        (vec!["watch", "not a url"], "<URL>"),
        (vec!["call", url, "x", "{bad"], "[DATA]"),
        (vec!["send", url, "nope"], "<DATA>"),
        (vec!["call", "-H", "no colon", url, "x"], "--header"),
        (vec!["call", "--user", "nocolon", url, "x"], "--user"),
        (
            vec!["call", "--generation", "0.5", url, "x", "{}"],
            "[DATA]",
        ),
        (
            vec!["call", "--generation", "0.8", url, "x"],
            "--generation",
        ),
        (vec!["call", "--timeout", "0", url, "x"], "--timeout"),
        (
            vec!["send", "--generation", "0.7", url, "1"],
            "--generation",
        ),
        (vec!["watch", "--path", "a", url], "--path"),
        (
            vec!["call", "--cacert", "/nonexistent.pem", url, "x"],
            "--cacert",
        ),
        (vec!["serve", "/nonexistent/state.json"], "<FILE.json>"),
        (vec!["frobnicate"], "frobnicate"),
    ] {
        let refused = run(&args).await;
        assert_eq!(refused.code, Some(64), "{args:?}: {refused:?}");
        assert!(
            refused.stderr.contains(named),
            "{args:?} should name {named}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn help_and_completions_exit_0() {
    let help = run(["--help"]).await;
    assert_eq!(help.code, Some(0), "{help:?}");
    for command in ["watch", "call", "send", "serve"] {
        assert!(help.stdout.contains(command), "{help:?}");
    }
    let completions = run(["completions", "bash"]).await;
    assert_eq!(completions.code, Some(0), "{completions:?}");
    assert!(completions.stdout.contains("juggler"), "{completions:?}");
}
