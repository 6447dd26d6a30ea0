"""Composition root of the blueprint consumer: build the long-lived resources once.

``python -m consumers.runtime worker consumers.blueprint_consumer.app:blueprint_consumer
choreography-requests-blueprint`` (or ``http ...``) calls :func:`blueprint_consumer` once at
start-up. The runtime owns the request pool (one transaction per event); this root opens a second,
small pool for the move index cache (loads and version probes in a background thread) and for
analysis cache writes, so those never wait behind a handler holding a request connection.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from blobstore.configured import build_storage
from blobstore.storage import Storage
from choreography.planner.gemini import GeminiDescriptionParser, gemini_parser_from_settings
from choreography.planner.gemini_refiner import gemini_refiner_from_settings
from choreography.planner.pipeline import PlanFn
from choreography.planner.planner import plan_choreography
from choreography.search.cache import move_index_cache_from_pool
from choreography.search.text_embedding import TextEmbedder, text_embedder_from_settings
from consumers.blueprint_consumer.bounded_analysis import BoundedAnalyser
from consumers.blueprint_consumer.handler import CONSUMER, BlueprintConsumer
from consumers.blueprint_consumer.song_store import Analyser, SongResolver
from consumers.blueprint_consumer.work import PostgresPlanningWork
from consumers.runtime.handler import EventHandler
from lifecycle.database import open_pool
from schemas.events import SOURCE_BLUEPRINT_CONSUMER
from schemas.settings import (
    BlueprintConsumerSettings,
    DatabaseSettings,
    GeminiSettings,
    PubSubSettings,
    SongSettings,
    StorageSettings,
    VectorSearchSettings,
)
from schemas.song_limits import DEFAULT_LIMITS, SongLimits

# Move search runs on text vectors: the request is text (a description or constraint words).
SEARCH_KIND = "text"
SIDE_POOL_SIZE = 2


def build_blueprint_consumer(
    side_pool: Any,
    storage: Storage,
    *,
    settings: BlueprintConsumerSettings | None = None,
    search: VectorSearchSettings | None = None,
    gemini: GeminiDescriptionParser | None = None,
    embedder: TextEmbedder | None = None,
    analyse: Analyser | None = None,
    plan: PlanFn = plan_choreography,
    limits: SongLimits = DEFAULT_LIMITS,
) -> BlueprintConsumer:
    """The use case wired to its resources (tests pass their own pool, storage and fakes)."""
    search = search or VectorSearchSettings()
    return BlueprintConsumer(
        songs=SongResolver(storage, side_pool, analyse, limits),
        moves=move_index_cache_from_pool(side_pool, SEARCH_KIND, search),
        embedder=embedder or text_embedder_from_settings(search),
        settings=settings or BlueprintConsumerSettings(),
        gemini=gemini,
        plan=plan,
    )


def as_event_handler(consumer: BlueprintConsumer) -> EventHandler:
    """The runtime's view: dedupe name, default failure stage (steps tag their own), source;
    the handler gets the PostgreSQL ports on the connection of the runtime's transaction."""
    return EventHandler(
        consumer=CONSUMER,
        stage="analysis",
        handle=lambda conn, event, delivery: consumer.handle(
            PostgresPlanningWork.on(conn), event, delivery
        ),
        source=SOURCE_BLUEPRINT_CONSUMER,
    )


def blueprint_consumer() -> EventHandler:
    """Read the environment and build the handler with its long-lived resources, once."""
    database = DatabaseSettings()
    side = database.model_copy(update={"pool_min_size": 1, "pool_max_size": max(SIDE_POOL_SIZE, 1)})
    side_pool = open_pool(side, name="blueprint-consumer-side")
    storage = build_storage(StorageSettings(), PubSubSettings().project_id)
    gemini = GeminiSettings()
    songs = SongSettings()
    consumer = build_blueprint_consumer(
        side_pool,
        storage,
        gemini=gemini_parser_from_settings(gemini),
        plan=partial(plan_choreography, refiner=gemini_refiner_from_settings(gemini)),
        limits=songs.limits(),
        analyse=BoundedAnalyser(songs.analysis_timeout_s, songs.max_seconds)
        if songs.analysis_timeout_s > 0
        else None,
    )
    return as_event_handler(consumer)
