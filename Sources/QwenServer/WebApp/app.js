// The page's shell: the API client and its key, the conversation list, settings, and the chat
// mode (chat.js). Served by `qwenkit serve` at `/`; no build step, no third-party code.

import { APIClient, APIError, forgetAPIKey, storeAPIKey, storedAPIKey } from "./api.js";
import { ChatView } from "./chat.js";
import { ConversationStore, displayTitle, loadSettings, saveSettings } from "./store.js";

const $ = (id) => document.getElementById(id);

class App {
    constructor() {
        this.store = new ConversationStore();
        this.settings = loadSettings();
        this.model = null;
        this.keyRequest = null;  // the open key dialog's promise, shared by concurrent 401s
        this.api = new APIClient((message) => this.askForKey(message));
        this.chat = new ChatView(this);
        this.current = null;

        $("new-conversation").addEventListener("click", () => this.newConversation());
        $("rename-conversation").addEventListener("click", () => this.renameConversation());
        $("delete-conversation").addEventListener("click", () => this.deleteConversation());
        $("open-settings").addEventListener("click", () => this.openSettings());
        $("settings-form").addEventListener("submit", (event) => this.saveSettingsForm(event));
        $("forget-key").addEventListener("click", () => {
            forgetAPIKey();
            $("forget-key").hidden = true;
            this.announce("API key forgotten.");
        });
        for (const button of document.querySelectorAll("[data-close]")) {
            button.addEventListener("click", () => button.closest("dialog").close("cancel"));
        }
        document.addEventListener("keydown", (event) => {
            if (event.ctrlKey && event.shiftKey && event.key.toLowerCase() === "o") {
                event.preventDefault();
                this.newConversation();
            }
        });
    }

    async start() {
        this.select(this.store.conversations[0] ?? this.store.create());
        $("message-input").focus();
        try {
            this.model = await this.api.model();
        } catch (error) {
            this.showProblem(error instanceof APIError ? error.message : String(error));
            return;
        }
        $("model-name").textContent = this.model.id;
        $("empty-model").textContent = this.model.id;
        $("thinking-setting").hidden = !this.model.supports_thinking;
        document.title = `QwenKit — ${this.model.id}`;
        this.chat.showContextUse(this.current);
        document.body.dataset.ready = "true";
    }

    // MARK: - Conversations

    select(conversation) {
        this.current = conversation;
        this.chat.show(conversation);
        this.conversationChanged();
    }

    newConversation() {
        const empty = this.store.conversations.find((c) => c.messages.length === 0);
        this.select(empty ?? this.store.create());
        $("message-input").focus();
    }

    async renameConversation() {
        const dialog = $("rename-dialog");
        $("rename-input").value = displayTitle(this.current);
        if ((await showModal(dialog)) !== "ok") return;
        this.store.rename(this.current.id, $("rename-input").value);
        this.conversationChanged();
    }

    async deleteConversation() {
        const conversation = this.current;
        $("delete-text").textContent = `“${displayTitle(conversation)}” and its messages will be removed from this browser.`;
        if ((await showModal($("delete-dialog"))) !== "delete") return;
        if (this.chat.conversation === conversation) this.chat.stop();
        this.store.remove(conversation.id);
        this.select(this.store.conversations[0] ?? this.store.create());
        this.announce("Conversation deleted.");
        $("message-input").focus();
    }

    saveConversations() {
        if (!this.store.save()) this.showProblem("The browser's storage is full: this conversation is not saved. Delete old conversations to make room.");
    }

    /** Redraws the list and the header after a conversation was added, renamed or changed. */
    conversationChanged() {
        const list = $("conversation-list");
        const items = this.store.conversations
            .filter((c) => c.messages.length > 0 || c === this.current)
            .map((conversation) => {
                const item = document.createElement("li");
                const button = document.createElement("button");
                button.type = "button";
                button.className = "conversation";
                button.dir = "auto";
                button.textContent = displayTitle(conversation);
                if (conversation === this.current) button.setAttribute("aria-current", "true");
                button.addEventListener("click", () => {
                    this.select(conversation);
                    $("message-input").focus();
                });
                item.append(button);
                return item;
            });
        list.replaceChildren(...items);
        $("conversation-title").textContent = displayTitle(this.current);
        const empty = this.current.messages.length === 0;
        $("rename-conversation").disabled = empty;
        $("delete-conversation").disabled = empty;
    }

    // MARK: - Settings

    openSettings() {
        $("setting-system").value = this.settings.systemPrompt;
        $("setting-temperature").value = String(this.settings.temperature);
        $("setting-max-tokens").value = String(this.settings.maxTokens);
        $("setting-max-tokens").max = this.model?.context_length ?? "";
        $("setting-thinking").checked = this.settings.thinking;
        $("settings-error").textContent = "";
        $("forget-key").hidden = storedAPIKey() === null;
        $("settings-dialog").showModal();
    }

    saveSettingsForm(event) {
        const temperature = Number($("setting-temperature").value);
        const maxTokens = Number($("setting-max-tokens").value);
        const context = this.model?.context_length ?? Infinity;
        let problem = "";
        if (!(temperature >= 0 && temperature <= 2)) problem = "The temperature must be between 0 and 2.";
        else if (!(Number.isInteger(maxTokens) && maxTokens >= 1 && maxTokens < context)) {
            problem = `The maximum number of tokens must be a whole number from 1 to ${context === Infinity ? "the context length" : context - 1}.`;
        }
        if (problem) {
            event.preventDefault();
            $("settings-error").textContent = problem;
            return;
        }
        this.settings = { systemPrompt: $("setting-system").value, temperature, maxTokens, thinking: $("setting-thinking").checked };
        if (!saveSettings(this.settings)) this.showProblem("The browser's storage refused the settings; they last until the page is closed.");
        this.announce("Settings saved.");
    }

    // MARK: - API key

    /** Shows the key dialog; resolves when a key is stored. Concurrent 401s share one dialog. */
    askForKey() {
        if (this.keyRequest) return this.keyRequest;
        const hadKey = storedAPIKey() !== null;
        this.keyRequest = new Promise((resolve) => {
            const dialog = $("key-dialog");
            $("key-error").textContent = hadKey ? "The server refused that key. Check the key given to qwenkit serve --api-key." : "";
            $("key-input").value = "";
            const submit = (event) => {
                const key = $("key-input").value.trim();
                if (!key) {
                    event.preventDefault();
                    $("key-error").textContent = "Enter the key.";
                    return;
                }
                dialog.removeEventListener("cancel", refuseCancel);
                $("key-form").removeEventListener("submit", submit);
                storeAPIKey(key, $("key-remember").checked);
                this.keyRequest = null;
                resolve();
            };
            // Nothing on the page works without the key, so Escape does not dismiss the dialog.
            const refuseCancel = (event) => event.preventDefault();
            dialog.addEventListener("cancel", refuseCancel);
            $("key-form").addEventListener("submit", submit);
            dialog.showModal();
        });
        return this.keyRequest;
    }

    // MARK: - Messages to the person

    /** Says `text` to screen readers (a polite live region). */
    announce(text) {
        const status = $("status");
        status.textContent = "";
        // A new text node, so the same words said twice are announced twice.
        requestAnimationFrame(() => { status.textContent = text; });
    }

    showProblem(text) {
        const stats = $("stats");
        stats.textContent = text;
        stats.classList.add("error");
        this.announce(text);
    }
}

/** Opens `dialog` as a modal; resolves with its return value when it closes. */
function showModal(dialog) {
    return new Promise((resolve) => {
        dialog.returnValue = "";
        dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
        dialog.showModal();
    });
}

new App().start();
