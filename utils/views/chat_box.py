"""A chat box for lesson 12's assistant: type a message, see the reply, and see when old turns fall out.

    chat_box(model, tok)       # in a notebook: a live ipywidgets box (a kernel must be running)

The box keeps a utils.chat.Conversation. Before every reply the history is trimmed to the model's
context (utils.chat_template.trim_history), and the box says how many earlier turns the reply could
not see: a small model's memory of a conversation is its context window, nothing more.
"""

from __future__ import annotations

import html

from ..chat import Conversation

STYLE = {"user": "background:#e8f0fe;margin-left:20%", "assistant": "background:#f1f3f4;margin-right:20%"}


def transcript_html(messages: list[dict], dropped: int = 0) -> str:
    """The conversation as HTML bubbles; the first `dropped` messages greyed out (outside the context)."""
    rows = []
    for i, m in enumerate(messages):
        faded = "opacity:0.45;" if i < dropped else ""
        who = "you" if m["role"] == "user" else "assistant"
        text = html.escape(m["content"]) or "<i>(an empty reply)</i>"
        rows.append(f"<div class='chat-{m['role']}' style='{STYLE[m['role']]};{faded}padding:4px 8px;margin-top:4px;"
                    f"border-radius:8px;font-family:monospace;white-space:pre-wrap'><b>{who}:</b> {text}</div>")
    return "<div class='chat-transcript'>" + "".join(rows) + "</div>"


def chat_box(model, tok, temperature: float = 0.0):
    """An ipywidgets box: a transcript, a text field, Send and Reset. Returns the box (display it)."""
    import ipywidgets as widgets

    talk = Conversation(model, tok, temperature=temperature)
    transcript = widgets.HTML(transcript_html([]))
    note = widgets.HTML("")
    text = widgets.Text(placeholder="e.g. What is 38 + 45?", layout=widgets.Layout(width="60%"))
    send = widgets.Button(description="Send", button_style="primary")
    reset = widgets.Button(description="Reset")

    def on_send(_=None):
        try:
            talk.say(text.value)
        except ValueError as error:  # an empty message, an unknown character, a message too long
            note.value = f"<span class='chat-note' style='color:#b3261e'>{html.escape(str(error))}</span>"
            return
        text.value = ""
        transcript.value = transcript_html(talk.messages, dropped=talk.dropped)  # the reply did not see those
        context = model.config.context_length
        note.value = (f"<span class='chat-note' style='color:#555'>{talk.dropped} earlier messages no longer fit the "
                      f"context of {context} tokens: the last reply did not see the greyed ones.</span>"
                      if talk.dropped else "")

    def on_reset(_):
        talk.reset()
        transcript.value, note.value, text.value = transcript_html([]), "", ""

    send.on_click(on_send)
    reset.on_click(on_reset)
    box = widgets.VBox([transcript, widgets.HBox([text, send, reset]), note])
    box.add_class("chat-box")
    return box
