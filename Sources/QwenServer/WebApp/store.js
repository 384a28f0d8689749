// Conversations and settings, kept in the browser's localStorage (this origin only; nothing is
// stored on the server).
//
// A conversation: {id, title, created, updated, messages: [message]}.
// A message: {role: "user" | "assistant", content, reasoning?, status?, error?, stats?}
//   status (assistant): "streaming" | "done" | "length" | "stopped" | "error".
//   stats: {promptTokens, completionTokens, tokensPerSecond, contextLength}.

const CONVERSATIONS = "qwenkit.conversations.v1";
const SETTINGS = "qwenkit.settings.v1";

export const defaultSettings = Object.freeze({
    systemPrompt: "",
    temperature: 0.7,
    maxTokens: 1024,
    thinking: true,
});

function read(name, fallback) {
    try {
        const text = localStorage.getItem(name);
        return text === null ? fallback : JSON.parse(text);
    } catch {
        return fallback;  // unreadable (edited by hand, another version): start again rather than fail
    }
}

/** Writes `value`; false when the browser refused (storage full or disabled). */
function write(name, value) {
    try {
        localStorage.setItem(name, JSON.stringify(value));
        return true;
    } catch {
        return false;
    }
}

export function loadSettings() {
    const stored = read(SETTINGS, {});
    return { ...defaultSettings, ...(typeof stored === "object" && stored !== null ? stored : {}) };
}

export function saveSettings(settings) {
    return write(SETTINGS, settings);
}

export class ConversationStore {
    constructor() {
        const stored = read(CONVERSATIONS, []);
        this.conversations = Array.isArray(stored)
            ? stored.filter((c) => c && typeof c.id === "string" && Array.isArray(c.messages))
            : [];
        // An answer that was streaming when the page closed is over.
        for (const conversation of this.conversations) {
            for (const message of conversation.messages) {
                if (message.status === "streaming") message.status = "stopped";
            }
        }
        this.sort();
    }

    sort() {
        this.conversations.sort((a, b) => b.updated - a.updated);
    }

    get(id) {
        return this.conversations.find((c) => c.id === id) ?? null;
    }

    create() {
        const now = Date.now();
        const conversation = { id: randomID(), title: "", created: now, updated: now, messages: [] };
        this.conversations.unshift(conversation);
        return conversation;
    }

    rename(id, title) {
        const conversation = this.get(id);
        if (conversation) conversation.title = title.trim().slice(0, 200);
        return this.save();
    }

    remove(id) {
        this.conversations = this.conversations.filter((c) => c.id !== id);
        return this.save();
    }

    touch(conversation) {
        conversation.updated = Date.now();
        this.sort();
    }

    /** Saves every conversation that has a message; false when the browser refused. */
    save() {
        return write(CONVERSATIONS, this.conversations.filter((c) => c.messages.length > 0));
    }
}

/** 128 random bits in hex (crypto.randomUUID exists only in secure contexts, not on http://LAN addresses). */
function randomID() {
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The title shown for a conversation: its own, else the start of its first message. */
export function displayTitle(conversation) {
    if (conversation.title) return conversation.title;
    const first = conversation.messages.find((m) => m.role === "user")?.content.trim() ?? "";
    if (!first) return "New chat";
    const line = first.split("\n")[0];
    return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}
