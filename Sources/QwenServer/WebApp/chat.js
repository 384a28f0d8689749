// The chat mode: one conversation's messages, the composer, and the streamed answer.
//
// The page is organised so another mode (the agent, once the server has an HTTP API for it)
// can sit beside this one: app.js owns what modes share (the API client and its key, the
// conversation list, settings), and a mode renders into #messages and handles the composer.

import { renderMarkdown } from "./markdown.js";

const $ = (id) => document.getElementById(id);

export class ChatView {
    /** @param app the shell: {api, store, settings, model, announce(text), conversationChanged()} */
    constructor(app) {
        this.app = app;
        this.conversation = null;
        this.controller = null;  // the AbortController of the answer being written, if any
        this.messages = $("messages");
        this.input = $("message-input");
        this.sendButton = $("send");
        this.stopButton = $("stop");

        $("composer").addEventListener("submit", (event) => {
            event.preventDefault();
            this.send();
        });
        this.input.addEventListener("keydown", (event) => {
            if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
                event.preventDefault();
                this.send();
            }
        });
        this.stopButton.addEventListener("click", () => this.stop());
        document.addEventListener("keydown", (event) => {
            if (event.key === "Escape" && this.controller && !document.querySelector("dialog[open]")) this.stop();
        });
    }

    get isGenerating() {
        return this.controller !== null;
    }

    /** Shows `conversation`. */
    show(conversation) {
        this.conversation = conversation;
        const nodes = conversation.messages.map((message) => this.messageNode(message));
        const empty = $("empty-state");
        empty.hidden = nodes.length > 0;
        this.messages.replaceChildren(empty, ...nodes);
        this.showContextUse(conversation);
        this.messages.scrollTop = this.messages.scrollHeight;
    }

    // MARK: - Sending

    async send() {
        const text = this.input.value;
        if (text.trim() === "" || this.isGenerating || !this.conversation) return;
        const conversation = this.conversation;
        const user = { role: "user", content: text };
        const answer = { role: "assistant", content: "", reasoning: "", status: "streaming" };
        conversation.messages.push(user, answer);
        this.app.store.touch(conversation);
        this.input.value = "";
        $("empty-state").hidden = true;
        this.messages.append(this.messageNode(user));
        const node = this.messageNode(answer);
        this.messages.append(node);
        this.messages.scrollTop = this.messages.scrollHeight;
        this.app.conversationChanged();

        const controller = new AbortController();
        this.controller = controller;
        this.sendButton.hidden = true;
        this.stopButton.hidden = false;
        this.app.announce("Writing the answer…");

        const settings = this.app.settings;
        const history = conversation.messages.slice(0, -1)
            .filter((m) => m.status !== "error" && m.content !== "")
            .map((m) => ({ role: m.role, content: m.content }));
        const request = {
            model: this.app.model?.id,
            messages: settings.systemPrompt.trim() ? [{ role: "system", content: settings.systemPrompt }, ...history] : history,
            temperature: settings.temperature,
            max_tokens: settings.maxTokens,
        };
        if (this.app.model?.supports_thinking) request.chat_template_kwargs = { enable_thinking: settings.thinking };

        let firstTokenAt = null;
        let usage = null;
        let pending = false;
        const refresh = () => {
            // At most one render per frame, however fast the tokens come.
            if (pending) return;
            pending = true;
            requestAnimationFrame(() => {
                pending = false;
                this.updateMessageNode(node, answer);
            });
        };
        try {
            for await (const chunk of this.app.api.streamChat(request, controller.signal)) {
                if (chunk.usage) usage = chunk.usage;
                const choice = chunk.choices?.[0];
                if (!choice) continue;
                const delta = choice.delta ?? {};
                if (delta.reasoning_content) answer.reasoning += delta.reasoning_content;
                if (delta.content) answer.content += delta.content;
                if ((delta.content || delta.reasoning_content) && firstTokenAt === null) firstTokenAt = performance.now();
                if (choice.finish_reason) answer.status = choice.finish_reason === "length" ? "length" : "done";
                refresh();
            }
            if (answer.status === "streaming") answer.status = "done";
        } catch (error) {
            if (error.name === "AbortError") {
                answer.status = "stopped";
            } else {
                answer.status = "error";
                answer.error = error.message;
            }
        } finally {
            this.controller = null;
            this.stopButton.hidden = true;
            this.sendButton.hidden = false;
        }
        if (usage) {
            const seconds = firstTokenAt === null ? 0 : (performance.now() - firstTokenAt) / 1000;
            answer.stats = {
                promptTokens: usage.prompt_tokens,
                completionTokens: usage.completion_tokens,
                // The first token's time is the prompt's; the rate counts the tokens after it.
                tokensPerSecond: seconds > 0 && usage.completion_tokens > 1 ? (usage.completion_tokens - 1) / seconds : null,
                contextLength: this.app.model?.context_length ?? null,
            };
        }
        this.app.store.touch(conversation);
        this.app.saveConversations();
        this.updateMessageNode(node, answer);
        if (this.conversation === conversation) this.showContextUse(conversation);
        this.app.announce({ done: "Answer complete.", length: "Answer cut at the token limit.", stopped: "Stopped.",
                            error: `Error: ${answer.error}` }[answer.status] ?? "");
        if (this.conversation === conversation && document.activeElement === document.body) this.input.focus();
    }

    stop() {
        this.controller?.abort();
    }

    // MARK: - Rendering

    messageNode(message) {
        const article = document.createElement("article");
        article.className = `message ${message.role}`;
        const who = document.createElement("h2");
        who.className = "message-author";
        who.textContent = message.role === "user" ? "You" : "Qwen";
        article.append(who);
        if (message.role === "user") {
            const body = document.createElement("div");
            body.className = "message-body plain";
            body.dir = "auto";
            body.textContent = message.content;  // what the person typed, as typed
            article.append(body);
            return article;
        }
        const thinking = document.createElement("details");
        thinking.className = "thinking";
        const summary = document.createElement("summary");
        const reasoning = document.createElement("div");
        reasoning.className = "thinking-body";
        thinking.append(summary, reasoning);
        const body = document.createElement("div");
        body.className = "message-body";
        const footer = document.createElement("p");
        footer.className = "message-footer";
        article.append(thinking, body, footer);
        this.updateMessageNode(article, message);
        return article;
    }

    updateMessageNode(article, message) {
        const follow = this.isNearBottom();
        const [thinking, body, footer] = [".thinking", ".message-body", ".message-footer"].map((s) => article.querySelector(s));
        const streaming = message.status === "streaming";
        article.dataset.status = message.status;
        article.setAttribute("aria-busy", String(streaming));
        thinking.hidden = !message.reasoning;
        if (message.reasoning) {
            thinking.querySelector("summary").textContent = streaming && !message.content ? "Thinking…" : "Thoughts";
            renderMarkdown(message.reasoning, thinking.querySelector(".thinking-body"));
        }
        renderMarkdown(message.content, body);
        const notes = [];
        if (message.status === "length") notes.push("Cut at the token limit.");
        if (message.status === "stopped") notes.push("Stopped.");
        if (message.status === "error") notes.push(`Error: ${message.error}`);
        if (message.stats) notes.push(statsText(message.stats));
        footer.textContent = notes.join(" ");
        footer.classList.toggle("error", message.status === "error");
        if (follow) this.messages.scrollTop = this.messages.scrollHeight;
    }

    isNearBottom() {
        const m = this.messages;
        return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
    }

    /** The context meter: how much of the model's context the conversation's last turn used. */
    showContextUse(conversation) {
        const meter = $("context-meter");
        const text = $("context-text");
        const stats = [...conversation.messages].reverse().find((m) => m.stats)?.stats;
        const length = this.app.model?.context_length;
        if (!stats || !length) {
            meter.value = 0;
            text.textContent = length ? `0 / ${length} tokens` : "";
            $("stats").textContent = "";
            return;
        }
        const used = stats.promptTokens + stats.completionTokens;
        meter.value = Math.min(1, used / length);
        text.textContent = `${used} / ${length} tokens`;
        $("stats").textContent = stats.tokensPerSecond ? `${stats.tokensPerSecond.toFixed(1)} tokens/s` : "";
    }
}

function statsText(stats) {
    const parts = [`${stats.completionTokens} tokens`];
    if (stats.tokensPerSecond) parts.push(`${stats.tokensPerSecond.toFixed(1)} tokens/s`);
    if (stats.contextLength) parts.push(`context ${stats.promptTokens + stats.completionTokens} / ${stats.contextLength}`);
    return parts.join(" · ");
}
