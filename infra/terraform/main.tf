# Shared facts the other files read: the project number (for service agents and Cloud Run's
# deterministic URLs), the topology generated from schemas/topology.py, and the per-service
# settings that run.tf turns into containers.

data "google_project" "this" {
  project_id = var.project_id
}

# The Cloud Storage service agent; it publishes the object notifications behind the Eventarc
# storage trigger.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

locals {
  # One topology for code and infrastructure: regenerate with
  # `.venv/bin/python infra/terraform/generate_topology.py` (a unit test fails when it is stale).
  topology = jsondecode(file("${path.module}/topology.json"))

  # Subscriptions that feed a Cloud Run service, and the dead-letter ones kept for replay.
  consumer_subscriptions = { for name, s in local.topology.subscriptions : name => s if s.service != null }
  dead_letter_topics     = { for name, t in local.topology.topics : name => t if t.dead_letter_of != null }

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Cloud Run's deterministic URL (https://SERVICE-PROJECT_NUMBER.REGION.run.app). Known before
  # the service exists, so a service can be told its own URL as the OIDC audience to expect.
  service_names = { for key in keys(var.images) : key => "${var.name_prefix}-${key}" if key != "job" }
  service_urls = {
    for key, name in local.service_names :
    key => "https://${name}-${data.google_project.this.number}.${var.region}.run.app"
  }

  # One invoker identity per service: the producer's carries Cloud Storage events, each
  # consumer's carries its subscription's messages (push or Eventarc).
  trigger_identities = toset(keys(local.service_names))

  bucket_roles = toset(["songs", "moves", "videos", "blueprints"])
  bucket_names = { for role in local.bucket_roles : role => "${var.bucket_name_prefix}-${role}" }

  # libpq reads the password from PGPASSWORD (mounted from Secret Manager), so the URL itself
  # carries no secret. host= is the unix socket directory Cloud Run's Cloud SQL volume creates.
  database_url = format(
    "postgresql://%s@/%s?host=/cloudsql/%s",
    google_sql_user.app.name,
    google_sql_database.app.name,
    google_sql_database_instance.main.connection_name,
  )

  # Settings every deployable reads (schemas/settings.py), identical everywhere.
  common_env = {
    LOG_JSON          = "true"
    LOG_LEVEL         = var.log_level
    PUBSUB_PROJECT_ID = var.project_id
    STORAGE_BACKEND   = "gcs"
    SONGS_BUCKET      = google_storage_bucket.buckets["songs"].name
    MOVES_BUCKET      = google_storage_bucket.buckets["moves"].name
    VIDEOS_BUCKET     = google_storage_bucket.buckets["videos"].name
    BLUEPRINTS_BUCKET = google_storage_bucket.buckets["blueprints"].name
    DATABASE_URL      = local.database_url
    # A request's audio_uri may name only the songs bucket or a key under songs/ in it.
    SONG_SOURCES = "songs/,gs://${google_storage_bucket.buckets["songs"].name}/"
  }
}
