// The demo page on the 0.7 generation: the same live state as index.html,
// the visitor's name and the actions sent as requests.
import { Connection } from './juggler07.js';

const $ = id => document.getElementById(id);
const conn = new Connection();
const rendered = [];  // resolvers waiting for the next render

function render(state) {
    if (state === null || typeof state !== 'object') return;
    $('clock').textContent = state.time;
    $('clients').textContent = String(state.clients);
    $('counter').textContent = String(state.counter);
    $('names').textContent = state.names.join(', ');
    rendered.splice(0).forEach(resolve => resolve());
}

async function requestAndShow(name, data) {
    try {
        const result = await conn.send(name, data);
        $('result').textContent = name === 'increment' ? `counter is now ${result}` : String(result);
    } catch (error) {
        $('result').textContent = `error: ${error}`;
    }
}

conn.addEventListener('open', () => {
    $('status').textContent = 'connected (Juggler 0.7)';
    $('status').className = '';
    conn.send('set_name', $('name').value);
});
conn.addEventListener('close', () => {
    $('status').textContent = 'disconnected (reload to reconnect)';
    $('status').className = 'offline';
});
conn.addEventListener('change', event => render(event.detail));
$('name').addEventListener('input', event => conn.send('set_name', event.target.value));
$('increment').addEventListener('click', () => requestAndShow('increment', 1));
$('reverse').addEventListener('click', () => requestAndShow('reverse', $('text').value));

// `?selftest`: as on index.html, reported with requests named "selftest".
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
        conn.send('selftest', {selftest: 'shown', shown: shown(), extensions: conn.extensions});
        const before = $('result').textContent;
        $('increment').click();
        while ($('result').textContent === before) await nextRender();
        conn.send('selftest', {selftest: 'clicked', result: $('result').textContent, shown: shown()});
    });
}
