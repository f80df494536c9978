// A dependency-free Juggler client for browsers: RFC 6902 JSON Patch
// apply and diff, the Juggler connection (DATA, MESSAGE, PING/PONG) and
// RPC over messages (the juggler-rs / hat-juggler rpc format).

/** Deep JSON equality (false is not 0). */
export function equal(a, b) {
    if (a === b) return true;
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    if (Array.isArray(a)) {
        return a.length === b.length && a.every((x, i) => equal(x, b[i]));
    }
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length &&
        keys.every(k => Object.prototype.hasOwnProperty.call(b, k) && equal(a[k], b[k]));
}

function copy(value) {
    return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

function parsePointer(path) {
    if (path === '') return [];
    if (typeof path !== 'string' || path[0] !== '/') throw new Error(`bad JSON pointer ${path}`);
    return path.slice(1).split('/').map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function escapeSegment(segment) {
    return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

function arrayIndex(array, segment, allowEnd) {
    if (segment === '-' && allowEnd) return array.length;
    if (!/^(0|[1-9][0-9]*)$/.test(segment)) throw new Error(`bad array index ${segment}`);
    const index = Number(segment);
    if (index > array.length || (!allowEnd && index === array.length)) throw new Error(`index ${segment} out of range`);
    return index;
}

function parentOf(doc, segments) {
    let node = doc;
    for (const segment of segments.slice(0, -1)) {
        if (Array.isArray(node)) node = node[arrayIndex(node, segment, false)];
        else if (node !== null && typeof node === 'object' && Object.prototype.hasOwnProperty.call(node, segment)) node = node[segment];
        else throw new Error(`path not found at ${segment}`);
    }
    if (node === null || typeof node !== 'object') throw new Error('parent is not a container');
    return node;
}

function get(doc, path) {
    const segments = parsePointer(path);
    if (segments.length === 0) return doc;
    const parent = parentOf(doc, segments);
    const key = segments[segments.length - 1];
    if (Array.isArray(parent)) return parent[arrayIndex(parent, key, false)];
    if (!Object.prototype.hasOwnProperty.call(parent, key)) throw new Error(`path ${path} not found`);
    return parent[key];
}

function add(doc, path, value) {
    const segments = parsePointer(path);
    if (segments.length === 0) return value;
    const parent = parentOf(doc, segments);
    const key = segments[segments.length - 1];
    if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, value);
    else parent[key] = value;
    return doc;
}

function remove(doc, path) {
    const segments = parsePointer(path);
    if (segments.length === 0) return null;
    const parent = parentOf(doc, segments);
    const key = segments[segments.length - 1];
    if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, false), 1);
    else if (Object.prototype.hasOwnProperty.call(parent, key)) delete parent[key];
    else throw new Error(`path ${path} not found`);
    return doc;
}

/** Applies RFC 6902 operations; returns a new document, or throws and
 * leaves `doc` untouched (the patch applies whole or not at all). */
export function applyPatch(doc, ops) {
    if (!Array.isArray(ops)) throw new Error('a patch is an array');
    let result = copy(doc);
    for (const op of ops) {
        switch (op.op) {
            case 'add': result = add(result, op.path, copy(op.value)); break;
            case 'remove': result = remove(result, op.path); break;
            case 'replace': get(result, op.path); result = add(remove(result, op.path), op.path, copy(op.value)); break;
            case 'move': { const value = get(result, op.from); result = add(remove(result, op.from), op.path, value); break; }
            case 'copy': result = add(result, op.path, copy(get(result, op.from))); break;
            case 'test': if (!equal(get(result, op.path), op.value)) throw new Error(`test failed at ${op.path}`); break;
            default: throw new Error(`unknown op ${op.op}`);
        }
    }
    return result;
}

/** RFC 6902 operations that turn `a` into `b`. */
export function diff(a, b, path = '', ops = []) {
    if (equal(a, b)) return ops;
    const isObject = v => v !== null && typeof v === 'object' && !Array.isArray(v);
    if (isObject(a) && isObject(b)) {
        for (const key of Object.keys(a)) {
            if (!Object.prototype.hasOwnProperty.call(b, key)) ops.push({op: 'remove', path: `${path}/${escapeSegment(key)}`});
        }
        for (const key of Object.keys(b)) {
            const child = `${path}/${escapeSegment(key)}`;
            if (Object.prototype.hasOwnProperty.call(a, key)) diff(a[key], b[key], child, ops);
            else ops.push({op: 'add', path: child, value: copy(b[key])});
        }
    } else if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
        a.forEach((item, i) => diff(item, b[i], `${path}/${i}`, ops));
    } else {
        ops.push({op: 'replace', path, value: copy(b)});
    }
    return ops;
}

function defaultAddress() {
    const protocol = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${protocol}://${location.host}/ws`;
}

/**
 * A Juggler connection.
 * Events: 'open', 'close', 'change' (detail: remote data), 'message'
 * (detail: a message that is not an rpc object).
 */
export class Connection extends EventTarget {
    constructor(address = defaultAddress(), {syncDelay = 100, actions = {}} = {}) {
        super();
        this.localData = null;
        this.remoteData = null;
        this.actions = actions;
        this._synced = null;
        this._syncDelay = syncDelay;
        this._syncTimer = null;
        this._lastId = 0;
        this._calls = new Map();
        this._ws = new WebSocket(address);
        this._ws.addEventListener('open', () => this.dispatchEvent(new CustomEvent('open')));
        this._ws.addEventListener('close', () => this._onClose());
        this._ws.addEventListener('message', event => this._onFrame(event.data));
    }

    get isOpen() {
        return this._ws.readyState === WebSocket.OPEN;
    }

    /** The WebSocket extensions the server agreed to (`permessage-deflate; ...`). */
    get extensions() {
        return this._ws.extensions;
    }

    setLocalData(data) {
        this.localData = data;
        if (this._syncTimer === null) this._syncTimer = setTimeout(() => this.flushLocalData(), this._syncDelay);
    }

    flushLocalData() {
        clearTimeout(this._syncTimer);
        this._syncTimer = null;
        const ops = diff(this._synced, this.localData);
        if (ops.length > 0 && this.isOpen) {
            this._write('DATA', ops);
            this._synced = copy(this.localData);
        }
    }

    send(message) {
        this._write('MESSAGE', message);
    }

    /** Calls a remote action; resolves with its result, rejects with its error text. */
    call(action, ...args) {
        const id = ++this._lastId;
        return new Promise((resolve, reject) => {
            this._calls.set(id, {resolve, reject});
            this.send({type: 'rpc', id, direction: 'request', action, args});
        });
    }

    close() {
        this.flushLocalData();
        this._ws.close(1000);
    }

    _write(type, payload) {
        if (!this.isOpen) throw new Error('connection closed');
        this._ws.send(JSON.stringify({type, payload}));
    }

    _onFrame(text) {
        try {
            const frame = JSON.parse(text);
            if (frame.type === 'DATA') {
                this.remoteData = applyPatch(this.remoteData, frame.payload);
                this.dispatchEvent(new CustomEvent('change', {detail: this.remoteData}));
            } else if (frame.type === 'MESSAGE') {
                this._onMessage(frame.payload);
            } else if (frame.type === 'PING') {
                this._write('PONG', {});
            } else if (frame.type !== 'PONG') {
                throw new Error(`unknown frame type ${frame.type}`);
            }
        } catch (error) {
            console.error('juggler protocol error', error);
            this._ws.close(1002, String(error.message).slice(0, 120));
        }
    }

    async _onMessage(message) {
        if (message === null || typeof message !== 'object' || message.type !== 'rpc') {
            this.dispatchEvent(new CustomEvent('message', {detail: message}));
        } else if (message.direction === 'response') {
            const call = this._calls.get(message.id);
            this._calls.delete(message.id);
            if (call) (message.success ? call.resolve : call.reject)(message.result);
        } else if (message.direction === 'request') {
            let success = true;
            let result;
            try {
                const action = this.actions[message.action];
                if (!action) throw 'invalid action';
                result = await action(...message.args);
            } catch (error) {
                success = false;
                result = String(error);
            }
            if (this.isOpen) this.send({type: 'rpc', id: message.id, direction: 'response', success, result});
        }
    }

    _onClose() {
        clearTimeout(this._syncTimer);
        for (const call of this._calls.values()) call.reject('connection closed');
        this._calls.clear();
        this.dispatchEvent(new CustomEvent('close'));
    }
}
