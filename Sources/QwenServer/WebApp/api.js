// The server's OpenAI-compatible API, as the page uses it: every /v1 request carries the API key
// as a Bearer token when one is known, and a 401 asks the person for the key (then retries).

/** An error the server returned in OpenAI's envelope, or a failure to reach it. */
export class APIError extends Error {
    constructor(message, status = 0, code = null) {
        super(message);
        this.status = status;
        this.code = code;
    }
}

// Where the key is kept. sessionStorage by default: the key is a credential, and sessionStorage
// ends with the tab, so it is not left on the disk of a shared machine. When the person ticks
// "remember", localStorage keeps it for this origin until they forget it.
const KEY_NAME = "qwenkit.apiKey";

export function storedAPIKey() {
    return sessionStorage.getItem(KEY_NAME) ?? localStorage.getItem(KEY_NAME);
}

export function storeAPIKey(key, remember) {
    sessionStorage.setItem(KEY_NAME, key);
    if (remember) localStorage.setItem(KEY_NAME, key); else localStorage.removeItem(KEY_NAME);
}

export function forgetAPIKey() {
    sessionStorage.removeItem(KEY_NAME);
    localStorage.removeItem(KEY_NAME);
}

export class APIClient {
    /**
     * @param {() => Promise<void>} askForKey called on a 401; resolves once a new key is stored,
     *   rejects when the person gives up.
     */
    constructor(askForKey) {
        this.askForKey = askForKey;
    }

    /** `fetch` of a /v1 path with the key; a 401 asks for the key and tries again. */
    async request(path, init = {}) {
        for (;;) {
            const headers = new Headers(init.headers);
            const key = storedAPIKey();
            if (key) headers.set("Authorization", `Bearer ${key}`);
            let response;
            try {
                response = await fetch(path, { ...init, headers });
            } catch (error) {
                if (error.name === "AbortError") throw error;
                throw new APIError("The server cannot be reached. Is `qwenkit serve` still running?");
            }
            if (response.status === 401) {
                await this.askForKey(await errorMessage(response));
                continue;
            }
            if (!response.ok) {
                const body = await response.json().catch(() => null);
                throw new APIError(body?.error?.message ?? `The server answered ${response.status}.`,
                                   response.status, body?.error?.code ?? null);
            }
            return response;
        }
    }

    /** The served model: `{id, context_length, supports_thinking}`. */
    async model() {
        const response = await this.request("/v1/models");
        const list = await response.json();
        return list.data[0];
    }

    /**
     * Streams a chat completion: yields each chunk object of the SSE stream until `[DONE]`.
     * An error sent inside the stream is thrown as an APIError; `signal` aborts the request
     * (the server then stops generating).
     */
    async *streamChat(body, signal) {
        const response = await this.request("/v1/chat/completions", {
            method: "POST",
            headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
            body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
            signal,
        });
        yield* readEvents(response.body, signal);
    }
}

async function errorMessage(response) {
    const body = await response.json().catch(() => null);
    return body?.error?.message ?? "The server needs an API key.";
}

/**
 * The JSON objects of a server-sent event stream. Events are separated by a blank line; the
 * `data:` lines of one event are joined with newlines; `[DONE]` ends the stream.
 */
export async function* readEvents(stream, signal) {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
        for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value.replace(/\r\n?/g, "\n");
            let end;
            while ((end = buffer.indexOf("\n\n")) >= 0) {
                const event = buffer.slice(0, end);
                buffer = buffer.slice(end + 2);
                const data = event.split("\n").filter((line) => line.startsWith("data:"))
                    .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5)).join("\n");
                if (data === "") continue;
                if (data === "[DONE]") return;
                const object = JSON.parse(data);
                if (object.error) throw new APIError(object.error.message ?? "The generation failed.", 0, object.error.code ?? null);
                yield object;
            }
        }
        if (signal?.aborted) throw new DOMException("Aborted", "AbortError");
        throw new APIError("The stream ended before the answer was complete.");
    } finally {
        reader.cancel().catch(() => {});
    }
}
