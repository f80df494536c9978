// Scenario for the browser reference clients of the request/notify/state
// generations (@hat-open/juggler 0.7.0 and 0.6.18); the entry pages
// reference_client07.js and reference_client06.js pass in their Connection.
//
// In these generations the client can only send requests, so the Rust test
// server drives the page with notifications and the page answers with
// requests named "report" (the server may answer them with anything):
//
//   notify "do" {"op":"request","name":N,"data":V,"tag":T}
//       -> conn.send(N, V), then report {"tag":T,"ok":true,"data":result}
//          or {"tag":T,"ok":false,"error":E}; E is String(err) for an Error
//          object (e.g. "Error: connection not open"), else the rejected
//          value itself (the response's data, as the client rejects with it)
//   notify "do" {"op":"state"}  -> report {"state": conn.state}
//   notify "do" {"op":"close"}  -> conn.close()
//   any other notify            -> report {"notify":{"name":..,"data":..}}
//   'change' event              -> report {"change": new state}
//   'open' event                -> report {"open": true}
//   window error / unhandled rejection, bad "do" -> report {"error": text}
//
// The page connects to the default address (ws(s)://<page host>/ws). The
// query string may set pingDelay, pingTimeout and maxSegmentSize (numbers,
// or "null" for null), e.g. ?maxSegmentSize=16&pingDelay=1000; missing ones
// keep the package defaults. 0.6.18's Connection takes only the address and
// ignores them (it has neither pings nor segments).

function param(params, name) {
    const text = params.get(name);
    if (text === null) return undefined;  // the package default
    if (text === 'null') return null;
    return Number(text);
}

export function run(Connection) {
    const params = new URLSearchParams(window.location.search);
    const conn = new Connection(
        undefined,
        param(params, 'pingDelay'),
        param(params, 'pingTimeout'),
        param(params, 'maxSegmentSize'));

    function report(value) {
        // A failed report (e.g. on a closed connection) has nowhere to go.
        conn.send('report', value).catch(() => {});
    }

    window.addEventListener('error', e => report({error: String(e.message)}));
    window.addEventListener('unhandledrejection', e => report({error: String(e.reason)}));

    conn.addEventListener('open', () => report({open: true}));

    conn.addEventListener('change', evt => report({change: evt.detail}));

    conn.addEventListener('notify', evt => {
        const {name, data} = evt.detail;
        if (name !== 'do') {
            report({notify: {name, data}});
            return;
        }
        try {
            const op = data && data.op;
            if (op === 'request') {
                const tag = data.tag;
                conn.send(data.name, data.data).then(
                    result => report({tag, ok: true, data: result}),
                    err => report({tag, ok: false,
                                   error: err instanceof Error ? String(err) : err}));
            } else if (op === 'state') {
                report({state: conn.state});
            } else if (op === 'close') {
                conn.close();
            } else {
                report({error: 'unknown command ' + JSON.stringify(data)});
            }
        } catch (e) {
            report({error: String(e)});
        }
    });

    return conn;
}
