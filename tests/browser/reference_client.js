// Scenario for the pinned browser reference client, @hat-open/juggler.
// The Rust test drives it over Juggler itself: it sends {"do": ...}
// commands as messages, and this page answers with messages that the test
// asserts. Any error is reported as {"error": ...}.
import { Connection } from '@hat-open/juggler';

const conn = new Connection(undefined, 0);  // default address: this page's host, path /ws

function report(value) {
    conn.send(value);
}

window.addEventListener('error', e => report({error: String(e.message)}));
window.addEventListener('unhandledrejection', e => report({error: String(e.reason)}));

conn.addEventListener('change', evt => {
    // Every change of remote data is reported back verbatim.
    report({remote_data: evt.detail});
});

conn.addEventListener('message', evt => {
    const msg = evt.detail;
    try {
        if (msg.do === 'echo') {
            report({echo: msg.value});
        } else if (msg.do === 'set_local_data') {
            conn.setLocalData(msg.value);
            // The sync runs in a timeout of 0 ms; report after it.
            setTimeout(() => report({set: true}), 20);
        } else if (msg.do === 'close') {
            conn.close();
        } else {
            report({error: 'unknown command ' + JSON.stringify(msg)});
        }
    } catch (e) {
        report({error: String(e)});
    }
});

conn.addEventListener('open', () => report({ready: navigator.userAgent}));
