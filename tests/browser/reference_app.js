// Scenario for the reference client's `Application` class: its RPC proxy
// calls our server's actions, and our server calls the page's actions.
// Results are reported as plain messages for the Rust test to assert.
import { Application } from '@hat-open/juggler';

const localActions = {
    echo: (...args) => args,
    fail: () => { throw new Error('page action failed'); },
};

// (localPath, remotePath, localRpcCbs, renderer, address, syncDelay, retryDelay)
const app = new Application(null, null, localActions, undefined, undefined, 0, 60000);

async function outcome(promise) {
    try {
        return {ok: await promise};
    } catch (error) {
        return {err: String(error)};
    }
}

window.addEventListener('error', e => app.send({error: String(e.message)}));

app.addEventListener('connected', async () => {
    const results = {
        add: await outcome(app.rpc.add(2, 3)),
        nested: await outcome(app.rpc.add(0.5, {"not": "a number"})),
        missing: await outcome(app.rpc.no_such_action()),
        echo: await outcome(app.rpc.echo('x', [1, {"ü": null}])),
    };
    app.send({rpc_results: results});
});
