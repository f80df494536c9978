// The demo page: renders the server's shared state, syncs the visitor's
// name as local data, and calls the server's actions.
import { Connection } from './juggler.js';

const $ = id => document.getElementById(id);
const conn = new Connection(undefined, {syncDelay: 100});
const rendered = [];  // resolvers waiting for the next render

function render(state) {
    if (state === null || typeof state !== 'object') return;
    $('clock').textContent = state.time;
    $('clients').textContent = String(state.clients);
    $('counter').textContent = String(state.counter);
    $('names').textContent = state.names.join(', ');
    rendered.splice(0).forEach(resolve => resolve());
}

async function callAndShow(action, ...args) {
    try {
        const result = await conn.call(action, ...args);
        $('result').textContent = action === 'increment' ? `counter is now ${result}` : String(result);
    } catch (error) {
        $('result').textContent = `error: ${error}`;
    }
}

conn.addEventListener('open', () => {
    $('status').textContent = 'connected';
    $('status').className = '';
    conn.setLocalData({name: $('name').value});
});
conn.addEventListener('close', () => {
    $('status').textContent = 'disconnected (reload to reconnect)';
    $('status').className = 'offline';
});
conn.addEventListener('change', event => render(event.detail));
$('name').addEventListener('input', event => conn.setLocalData({name: event.target.value}));
$('increment').addEventListener('click', () => callAndShow('increment', 1));
$('reverse').addEventListener('click', () => callAndShow('reverse', $('text').value));

// `?selftest`: the page checks itself the way a visitor would (read what
// is shown, click, read the result) and reports over Juggler. The demo's
// test in the tests crate asserts the reports.
if (new URLSearchParams(location.search).has('selftest')) {
    const nextRender = () => new Promise(resolve => rendered.push(resolve));
    const shown = () => ({
        clock: $('clock').textContent,
        clients: $('clients').textContent,
        counter: $('counter').textContent,
        names: $('names').textContent,
    });
    conn.addEventListener('open', async () => {
        await nextRender();
        conn.send({selftest: 'shown', shown: shown(), extensions: conn.extensions});
        const before = $('result').textContent;
        $('increment').click();
        while ($('result').textContent === before) await nextRender();
        conn.send({selftest: 'clicked', result: $('result').textContent, shown: shown()});
    });
}
