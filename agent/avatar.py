"""The avatar: a livekit-agents `Agent` whose turns run our hooks.

- STT node: tees the user's audio into `TurnAudio` (for speaker identification).
- `on_user_turn_completed`: a spoken turn is split where the voice changes (`split`), identified
  and recalled for within budget, and heard (`hearing`: whether it was for the avatar); of a split
  turn, every part spoken to the avatar is answered in turn.
- LLM node: the turn's context goes into this request only (`request`; typed turns are prepared
  here); emotion tags are stripped from the stream and become character expressions.
- TTS node: each sentence's audio goes to the character for lip-sync (`character.LipSync`).
- Session events: the speech events drive identification (`speaking`), every finished turn is
  remembered (`conversation`), agent states drive the character, and every tool call the LLM
  makes is recorded in tool memory. Fillers (`waiting`) and what the room says about the
  person (`participant`) live apart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Callable
from typing import Any

from livekit import rtc
from livekit.agents import Agent, AgentSession, ModelSettings, StopResponse, llm
from livekit.agents.voice.events import (
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    UserInputTranscribedEvent,
    UserStateChangedEvent,
)

from character_bridge.tags import TagParser

from .addressing import Addressing
from .audio import TurnAudio
from .character import TAG_INSTRUCTIONS, CharacterLink, LipSync
from .config import PipelineConfig
from .conversation import Conversation
from .hearing import Heard, Hearing
from .mcp_sessions import McpHub
from .participant import ParticipantView
from .presence import KNOWN
from .request import TurnRequest
from .split import Part, VoiceChange
from .status import Status
from .tools import DATA_INSTRUCTIONS, HubToolset, ToolCall
from .turn import TurnHooks, TurnPrep
from .waiting import Fillers

log = logging.getLogger(__name__)


class AvatarAgent(Agent):
    def __init__(self, config: PipelineConfig, hub: McpHub, hooks: TurnHooks, character: CharacterLink,
                 status: Status, addressing: Addressing):
        instructions = config.avatar.instructions.strip() + "\n\n" + DATA_INSTRUCTIONS
        if character.active and character.cfg.emotions:
            instructions += "\n\n" + TAG_INSTRUCTIONS
        self.config = config
        self.hooks = hooks
        self.character = character
        self.status = status
        self.turn_audio = TurnAudio()
        self.voice_change = VoiceChange(hub, config.turn, hooks.speakers)
        self.view = ParticipantView(config.vision, self._participant)
        self.conversation = Conversation(hooks)
        self.fillers = Fillers(status, config.status.filler_after)
        self.addressing = addressing
        self.hearing = Hearing(hooks, addressing, self.conversation)
        self._owed: asyncio.Task[None] | None = None  # answering a split turn's next part spoken to the avatar
        self.request = TurnRequest(config.context, hooks, self.view)
        self.last_prep: TurnPrep | None = None
        self._preps: dict[str, TurnPrep] = {}
        self._heard: str | None = None  # the user message whose words consent last heard
        self._task_text: str | None = None
        self._on_text: Callable[[str], None] | None = None  # the typed turn's reply text, as it streams
        self._streaming: asyncio.Task[None] | None = None  # identification after the first seconds of speech
        self.toolset = HubToolset(hub, self._acting_for, self._on_tool_call, config.tools, status)
        tools: list[Any] = [self.toolset]
        if hooks.settler is not None and hooks.identifies():
            tools.append(hooks.settler.tool)
        super().__init__(instructions=instructions, tools=tools)

    # -- session wiring ------------------------------------------------------------------------
    def attach(self, session: AgentSession) -> None:
        """Subscribe to the session's events (call before `session.start`)."""
        session.on("conversation_item_added", self._on_item)
        session.on("agent_state_changed", self._on_agent_state)
        session.on("user_state_changed", self._on_user_state)
        session.on("user_input_transcribed", self._on_transcript)

    def _on_transcript(self, ev: UserInputTranscribedEvent) -> None:
        if ev.is_final and ev.transcript.strip():
            recall = self.hooks.prefetch(ev.transcript.strip())  # recall starts before the turn ends
            self.voice_change.start(recall.calls.values() if recall is not None else ())

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            self.turn_audio.mark_speech()
            self.hooks.speakers.hear("speech_started")
            self.voice_change.drop()
            self.character.state("listening")
            if self.hooks.identifies() and self.hooks.cfg.stream_identify_s > 0:
                self._streaming = asyncio.create_task(self._identify_while_speaking())
        elif ev.old_state == "speaking":  # speech stopped: the turn may be over
            if self._streaming is not None:
                self._streaming.cancel()  # shorter than the streaming window: identify it whole
            if self.hooks.identifies():
                wav = self.turn_audio.peek()
                split = self.voice_change.listen(wav)  # checked once its words, identification and recall are in
                self.hooks.speakers.hear("speech_stopped", wav, self.view.jpeg(), tentative=split)

    async def _identify_while_speaking(self) -> None:
        await asyncio.sleep(self.hooks.cfg.stream_identify_s)
        self.hooks.speakers.hear("first_seconds", self.turn_audio.peek(), self.view.jpeg())

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        self.character.state(ev.new_state)
        if ev.new_state == "listening" and self.hearing.owed and self.session.user_state != "speaking":
            self._owed = asyncio.create_task(self._answer_owed())

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage):
            return
        text = item.text_content or ""
        prep = self._preps.get(item.id)
        if item.role == "user":
            self.conversation.user_said(text, prep)
            self.request.heard(item.id, prep.audience if prep else self.hooks.audience(self.hooks.user_id))
        elif item.role == "assistant" and text.strip():
            self.conversation.avatar_said(text)
            if self.last_prep is not None:
                self.request.heard(item.id, self.last_prep.audience)
            if not self._speaks():
                self.character.speak(text)

    def close_turn(self) -> None:
        self.conversation.close_turn()

    def _speaks(self) -> bool:
        try:
            return self.session.output.audio is not None and self.session.tts is not None
        except RuntimeError:
            return False

    def _on_tool_call(self, call: ToolCall) -> None:
        self.hooks.record_tool_call(call, task=self._task_text)

    async def on_enter(self) -> None:
        if self._speaks():  # fillers are spoken, never written: only a session with a voice has them
            self.fillers.enable(self.session)

    async def on_exit(self) -> None:
        self.close_turn()

    # -- the turn -------------------------------------------------------------------------------
    async def on_user_turn_completed(self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage) -> None:
        """A spoken turn ended: identify the voice (and face, with a camera) and recall; then the next
        participant may have the floor."""
        try:
            await self._turn_completed(new_message)
        finally:
            if self.view.floor is not None:
                self.view.floor.release()

    async def _turn_completed(self, new_message: llm.ChatMessage) -> None:
        self.hearing.forgo()  # a new turn: answers still owed to an earlier one would come too late
        wav, image = None, None
        split = self.voice_change.armed()  # it may hold two voices: segmenting needs its audio
        if self.hooks.needs_turn_audio() or split:  # else identified early (or not at all): encoding would be wasted
            wav, image = self.turn_audio.take(), self.view.jpeg()
        else:
            self.turn_audio.clear()
        claimed = self.view.claimed(self.addressing.known_users)
        if split and wav is not None and await self.voice_change.differs(self.hooks.group.identify_wait_ms / 1000):
            whole = self.hooks.speakers.take()  # taken now: after segmenting, a new turn's may be there
            if parts := await self.voice_change.heard_parts(wav, self.session.stt):
                if whole is not None:
                    whole.cancel()  # two people's voice says nothing of who spoke
                return await self._hear_parts(parts, new_message, claimed)
            if whole is not None:
                self.hooks.speakers.restore(whole)  # one voice after all: the turn keeps its identification
        if split:
            self.hooks.speakers.one_voice()
        text = (new_message.text_content or "").strip()
        prep = await self.hooks.prepare(text, wav, image, claimed)
        prep.modality = "video" if self.view.camera.fresh(self.view.identity()) else "voice"
        if (identity := self.view.identity()) is not None and prep.speaker_id:
            self.hooks.speakers.presence.link(identity, prep.speaker_id)
        facing = prep.speaker is not None and prep.speaker.face is not None and prep.speaker.face == prep.speaker_id
        heard = await self.hearing.whole(text, prep, facing)
        if not heard.addressed.yes:
            self.hearing.current = heard
            raise StopResponse()
        self._answering(new_message.id, heard)

    async def _hear_parts(self, parts: list[tuple[Part, str]], message: llm.ChatMessage, claimed: str | None) -> None:
        """A turn that held two voices: the first part spoken to the avatar is answered now (its words
        become the user message, recall is for its speaker), the others once the avatar has spoken."""
        addressed = await self.hearing.parts(parts, claimed, self.view.identity())
        if not addressed:
            self.hearing.current = None
            raise StopResponse()
        first, self.hearing.owed = addressed[0], addressed[1:]
        await self._recall_for(first)
        message.content = [first.text]
        self._answering(message.id, first)

    async def _recall_for(self, heard: Heard) -> None:
        if heard.prep.owner is not None and self.hooks.cfg.recall:
            heard.prep.recall = await self.hooks.recall(heard.prep.owner, heard.text)

    async def _answer_owed(self) -> None:
        """The avatar finished speaking: the next part of a split turn spoken to it gets its own reply."""
        heard = self.hearing.owed.pop(0)
        await self._recall_for(heard)
        message = llm.ChatMessage(role="user", content=[heard.text])
        self._answering(message.id, heard)
        self.session.generate_reply(user_input=message)

    def _answering(self, message_id: str, heard: Heard) -> None:
        """The avatar answers `heard` now: its reply, its speaker's rights, the character's gaze."""
        self.hearing.current = heard
        self._remember_prep(message_id, heard.prep)
        self.addressing.answered(heard.prep.speaker_id)
        self.character.look_at(heard.prep.speaker_id or "someone")

    def _participant(self) -> rtc.RemoteParticipant | None:
        """The room participant whose microphone we hear: the floor's holder when several are heard
        (None outside a room)."""
        try:
            room_io = self.session.room_io
        except RuntimeError:
            return None
        if self.view.floor is not None:
            return room_io.room.remote_participants.get(self.view.floor.holder or "")
        return room_io.linked_participant

    def _acting_for(self) -> str | None:
        """Whom the LLM's tool calls act for: the speaker of the turn being answered, when the voice is
        sure (known, provisional or given); an unsure or unknown voice gets no call at all."""
        speaker = self.last_prep.speaker if self.last_prep is not None else None
        return speaker.user_id if speaker is not None and speaker.decision in KNOWN else None

    def _remember_prep(self, message_id: str, prep: TurnPrep) -> None:
        self._preps = {message_id: prep}  # only the turn being answered
        self.last_prep = prep
        log.info("turn prepared in %.0f ms (identify %.0f ms, recall %s)", prep.total_ms, prep.identify_ms,
                 f"{prep.recall.ms:.0f} ms" if prep.recall else "off")

    async def _inject(self, chat_ctx: llm.ChatContext) -> None:
        """Put this turn's recalled context right after the user's message, in this request only
        (the stored history stays clean). Typed turns — `text_turn`, the console's text mode, a
        room's chat — reach here without `on_user_turn_completed`, and are prepared here."""
        found = next(((i, it) for i, it in reversed(list(enumerate(chat_ctx.items)))
                      if isinstance(it, llm.ChatMessage) and it.role == "user"), None)
        if found is None:
            return
        index, message = found
        text = (message.text_content or "").strip()
        prep = self._preps.get(message.id)
        if prep is None:  # a typed turn
            self.hearing.current = None
            prep = await self.hooks.prepare(text)
            self._remember_prep(message.id, prep)
        if self._heard != message.id:  # once per user turn: it may answer a question put to its speaker
            self._heard = message.id
            self.toolset.consent.hear(self._acting_for(), text)  # an unsure voice's yes grants nothing
        self._task_text = text
        self.status.begin_turn(message.id, prep.recall.profile if prep.recall else None)
        self.request.compose(chat_ctx, index, prep)

    async def text_turn(self, text: str, on_text: Callable[[str], None] | None = None) -> str:
        """One typed user turn; returns the reply text. `on_text` gets the reply's text piece by
        piece as the LLM produces it (emotion tags already removed), for a client that streams it."""
        message = llm.ChatMessage(role="user", content=[text])
        self._on_text = on_text
        try:
            handle = self.session.generate_reply(user_input=message)
            await handle
        finally:
            self._on_text = None
        if handle.exception() is not None:
            raise handle.exception()  # type: ignore[misc]
        return _reply_after(self.session.history, message.id)

    # -- nodes ----------------------------------------------------------------------------------
    def stt_node(self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings) -> Any:
        async def tee() -> AsyncIterable[rtc.AudioFrame]:
            async for frame in audio:
                self.turn_audio.push(frame)
                yield frame

        return Agent.default.stt_node(self, tee(), model_settings)

    async def llm_node(self, chat_ctx: llm.ChatContext, tools: list[llm.Tool],
                       model_settings: ModelSettings) -> AsyncIterable[llm.ChatChunk | str]:
        async for chunk in self._llm_chunks(chat_ctx, tools, model_settings):
            if piece := _text_of(chunk):
                if self._on_text is not None:
                    self._on_text(piece)
                if (heard := self.hearing.current) is not None and heard.addressed.yes:
                    heard.reply = (heard.reply or "") + piece  # what the LLM answered, even if cut off while spoken
            yield chunk

    async def _llm_chunks(self, chat_ctx: llm.ChatContext, tools: list[llm.Tool],
                          model_settings: ModelSettings) -> AsyncIterable[llm.ChatChunk | str]:
        await self._inject(chat_ctx)
        after_tools = bool(chat_ctx.items) and chat_ctx.items[-1].type == "function_call_output"
        self.status.emit("finalizing" if after_tools else "thinking")
        parser = self.character.parser()
        self.fillers.start()
        async for chunk in Agent.default.llm_node(self, chat_ctx, tools, model_settings):
            if self.fillers.waiting and (isinstance(chunk, str) or (
                    isinstance(chunk, llm.ChatChunk) and chunk.delta is not None
                    and (chunk.delta.content or chunk.delta.tool_calls))):
                self.fillers.first_token()
            if parser is None:
                yield chunk  # type: ignore[misc]
                continue
            if isinstance(chunk, str):
                yield self._clean(parser, chunk)
            elif isinstance(chunk, llm.ChatChunk) and chunk.delta is not None and chunk.delta.content:
                chunk.delta.content = self._clean(parser, chunk.delta.content)
                yield chunk
            else:
                yield chunk  # type: ignore[misc]
        self.fillers.first_token()  # no token at all (an error): nothing to announce
        if parser is not None and (rest := self._clean(parser, None)):
            yield rest

    def _clean(self, parser: TagParser, text: str | None) -> str:
        parsed = parser.feed(text) if text is not None else parser.flush()
        for tag in parsed.tags:
            self.character.express(tag.emotion, tag.intensity)
        return str(parsed.text)

    async def tts_node(self, text: AsyncIterable[str], model_settings: ModelSettings) -> AsyncIterable[rtc.AudioFrame]:
        """Speak, and send the character each sentence's text and audio as soon as it is synthesized."""
        spoken: list[str] = []

        async def tee_text() -> AsyncIterable[str]:
            async for piece in text:
                spoken.append(piece)
                yield piece

        lips = LipSync(self.character)
        async for frame in Agent.default.tts_node(self, tee_text(), model_settings):
            lips.frame(frame)
            yield frame
        lips.end("".join(spoken))


def _text_of(chunk: llm.ChatChunk | str) -> str:
    if isinstance(chunk, str):
        return chunk
    return (chunk.delta.content or "") if chunk.delta is not None else ""


def _reply_after(history: llm.ChatContext, message_id: str) -> str:
    """The assistant text that followed a user message in the session history."""
    items = history.items
    start = next((i for i, it in enumerate(items) if it.id == message_id), None)
    if start is None:
        return ""
    texts = [it.text_content or "" for it in items[start + 1:]
             if isinstance(it, llm.ChatMessage) and it.role == "assistant"]
    return " ".join(t.strip() for t in texts if t.strip())
