// A dependency-free client of the Juggler 0.7 generation for browsers:
// the transport (one-character headers, segments, pings) and the user
// layer (requests, the server's state as JSON Patch, notifications), as
// @hat-open/juggler 0.7 speaks them.
import { applyPatch } from './juggler.js';

function defaultAddress() {
    const protocol = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${protocol}://${location.host}/ws`;
}

/**
 * A Juggler 0.7 connection.
 * Events: 'open', 'close', 'change' (detail: state), 'notify' (detail:
 * {name, data}).
 */
export class Connection extends EventTarget {
    constructor(address = defaultAddress(), {pingDelay = 5000, pingTimeout = 5000, maxSegmentSize = 64 * 1024} = {}) {
        super();
        this.state = null;
        this._nextId = 1;
        this._pending = new Map();
        this._segments = [];
        this._maxSegmentSize = maxSegmentSize;
        this._pingDelay = pingDelay;
        this._pingTimeout = pingTimeout;
        this._timer = null;
        this._ws = new WebSocket(address);
        this._ws.addEventListener('open', () => { this._restartPing(); this.dispatchEvent(new CustomEvent('open')); });
        this._ws.addEventListener('close', () => {
            clearTimeout(this._timer);
            for (const { reject } of this._pending.values()) reject(new Error('connection closed'));
            this._pending.clear();
            this.dispatchEvent(new CustomEvent('close'));
        });
        this._ws.addEventListener('message', event => {
            try {
                this._receive(event.data);
            } catch (error) {
                this._ws.close();
                throw error;
            }
        });
    }

    get isOpen() {
        return this._ws.readyState === WebSocket.OPEN;
    }

    /** The WebSocket extensions the server agreed to (`permessage-deflate; ...`). */
    get extensions() {
        return this._ws.extensions;
    }

    close() {
        this._ws.close(1000);
    }

    /** Sends a request; resolves with the response's data, rejects with it on failure. */
    send(name, data) {
        if (!this.isOpen) return Promise.reject(new Error('connection not open'));
        const id = this._nextId++;
        const text = JSON.stringify({type: 'request', id, name, data});
        let start = 0;
        do {
            let end = Math.min(start + this._maxSegmentSize, text.length);
            // A segment never splits a surrogate pair: the browser would
            // send each half as U+FFFD.
            const last = text.charCodeAt(end - 1);
            if (end < text.length && end - start > 1 && last >= 0xd800 && last <= 0xdbff) end -= 1;
            this._ws.send((end < text.length ? '1' : '0') + text.slice(start, end));
            start = end;
        } while (start < text.length);
        return new Promise((resolve, reject) => this._pending.set(id, { resolve, reject }));
    }

    _restartPing() {
        clearTimeout(this._timer);
        if (this._pingDelay === null) return;
        this._timer = setTimeout(() => {
            this._ws.send('2');
            this._timer = setTimeout(() => this._ws.close(), this._pingTimeout);
        }, this._pingDelay);
    }

    _receive(frame) {
        this._restartPing();
        const header = frame[0];
        const body = frame.slice(1);
        if (header === '2') { this._ws.send('3' + body); return; }
        if (header === '3') return;
        if (header !== '0' && header !== '1') throw new Error(`unknown header ${header}`);
        this._segments.push(body);
        if (header === '1') return;
        const message = JSON.parse(this._segments.join(''));
        this._segments = [];
        if (message.type === 'response') {
            const pending = this._pending.get(message.id);
            if (!pending) return;
            this._pending.delete(message.id);
            if (message.success) pending.resolve(message.data); else pending.reject(message.data);
        } else if (message.type === 'state') {
            this.state = applyPatch(this.state, message.diff);
            this.dispatchEvent(new CustomEvent('change', {detail: this.state}));
        } else if (message.type === 'notify') {
            this.dispatchEvent(new CustomEvent('notify', {detail: {name: message.name, data: message.data}}));
        } else {
            throw new Error(`unexpected message type ${message.type}`);
        }
    }
}
