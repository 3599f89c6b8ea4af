"""Tool outputs: typed, so every tool has an output schema, and small (lists are bounded)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .profile import Patch, Profile, Value

Verdict = Literal["known", "unknown", "uncertain"]


class Candidate(BaseModel):
    user_id: str
    name: str | None = None
    score: float


class Match(BaseModel):
    """An identification: a decision, and what it was decided from."""

    decision: Verdict = Field(description="known: user_id is who this is; unknown: nobody enrolled; "
                                          "uncertain: too close to call (see candidates).")
    user_id: str | None = Field(default=None, description="The user, when decision is known.")
    name: str | None = None
    provisional: bool | None = Field(default=None, description="The user is a provisional (unnamed) one.")
    score: float | None = Field(default=None, description="Cosine similarity of the best candidate.")
    margin: float | None = Field(default=None, description="Best score minus the next candidate's.")
    threshold: float = Field(description="'known' needs at least this score.")
    unknown_below: float = Field(description="Below this score the answer is 'unknown'.")
    candidates: list[Candidate] = Field(default_factory=list, description="Closest users, best first.")


class VoiceMatch(Match):
    speech_seconds: float = Field(description="Seconds of speech the decision rests on (thresholds depend on it).")
    created_user_id: str | None = Field(default=None, description="A provisional user made for this unknown voice.")
    adapted: bool = Field(default=False, description="This clip was added to the user's voiceprint.")
    model: str


class Box(BaseModel):
    left: int
    top: int
    right: int
    bottom: int


class FaceMatch(Match):
    box: Box
    detection_score: float


class FaceResult(BaseModel):
    faces: list[FaceMatch] = Field(description="Every face found, largest first.")
    width: int
    height: int
    model: str


class IdentifyResult(BaseModel):
    decision: Verdict
    user_id: str | None = None
    name: str | None = None
    score: float | None = Field(default=None, description="Fused score: 1.0 is the 'known' level, 0 'unknown'.")
    margin: float | None = None
    threshold: float = 1.0
    reason: str
    created_user_id: str | None = None
    voice: VoiceMatch | None = None
    face: FaceMatch | None = Field(default=None, description="The largest face in the image.")


class SpeakerEnrollResult(BaseModel):
    user_id: str
    added: int
    speech_seconds: list[float]
    voice_samples: dict[str, int] = Field(description="Samples now held per source (enroll, provisional, adapted).")
    model: str


class FaceEnrollResult(BaseModel):
    user_id: str
    added: int
    boxes: list[Box]
    face_samples: int
    model: str


class VerifyResult(Match):
    claimed_user_id: str
    speech_seconds: float
    model: str


class Segment(BaseModel):
    start: float
    end: float
    speaker: str = Field(description="S1, S2, ... in order of first appearance.")
    user_id: str | None = None
    decision: Verdict


class SegmentSpeaker(VoiceMatch):
    speaker: str


class SegmentResult(BaseModel):
    segments: list[Segment]
    speakers: list[SegmentSpeaker]
    duration: float


class User(BaseModel):
    user_id: str
    name: str
    provisional: bool
    created_at: str
    updated_at: str
    voice_samples: dict[str, int] = Field(default_factory=dict)
    face_samples: int = 0
    facts: int = 0


class UserList(BaseModel):
    users: list[User]
    next_cursor: str | None = None
    total: int


class MergeResult(BaseModel):
    user_id: str = Field(description="The user that remains.")
    merged_user_id: str = Field(description="The user merged away (no longer exists).")
    voice_samples_moved: int
    face_samples_moved: int
    facts_added: int
    history_moved: int


class ForgetResult(BaseModel):
    user_id: str
    voice_samples: int
    face_samples: int
    history_entries: int
    compacted: bool = Field(description="The store files were rewritten: no bytes of the user remain.")


class Change(BaseModel):
    id: str
    at: str
    field: str
    op: str = Field(description="set, add, remove, confirm (seen again), visibility (who may hear it changed), "
                    "create, merge, rename")
    old: Value | None = None
    new: Value | None = None
    source: str
    source_ref: str | None = None
    confidence: float | None = None
    evidence: str | None = None
    visibility: str | None = Field(default=None, description="Who may hear the fact after the change.")


class ProfileUpdateResult(BaseModel):
    user_id: str
    changes: list[Change]
    profile: Profile


class HistoryResult(BaseModel):
    user_id: str
    changes: list[Change]
    next_cursor: str | None = None


class Proposal(BaseModel):
    patch: Patch
    valid: bool
    reason: str | None = Field(default=None, description="Why an invalid proposal was not applied.")


class ExtractResult(BaseModel):
    user_id: str
    proposals: list[Proposal]
    applied: list[Change]
    model: str


class SearchHit(BaseModel):
    user_id: str
    name: str
    provisional: bool
    score: float
    matches: list[str] = Field(description="Profile lines that share words with the query.")


class SearchResult(BaseModel):
    results: list[SearchHit]


class ResetResult(BaseModel):
    user_id: str
    removed: int
    voice_samples: dict[str, int]
