# Identities and the least access each needs. docs/DEPLOY.md has the same grants as a table with
# the reason for each.

locals {
  runtimes = toset(["producer", "blueprint", "dispatcher", "status", "job", "reaper"])

  # CloudEvent types each deployable publishes; the topic comes from the topology, so a type
  # moving to another topic moves the grant with it.
  published_event_types = {
    producer   = ["com.choreo.choreography.requested.v1"]
    blueprint  = ["com.choreo.blueprint.ready.v1", "com.choreo.task.failed.v1"]
    dispatcher = ["com.choreo.task.failed.v1"]
    job        = ["com.choreo.video.completed.v1", "com.choreo.task.failed.v1"]
    reaper     = ["com.choreo.task.failed.v1"]
  }
  topic_publishers = merge([
    for runtime, types in local.published_event_types : {
      for topic, t in local.topology.topics :
      "${runtime}/${topic}" => { runtime = runtime, topic = topic }
      if length(setintersection(toset(t.event_types), toset(types))) > 0
    }
  ]...)

  # Bucket access per runtime: read inputs, create outputs (deterministic names, conditional
  # create; nobody but an operator deletes).
  bucket_grants = {
    "producer/songs/viewer"      = { runtime = "producer", bucket = "songs", role = "roles/storage.objectViewer" }
    "blueprint/songs/viewer"     = { runtime = "blueprint", bucket = "songs", role = "roles/storage.objectViewer" }
    "blueprint/moves/viewer"     = { runtime = "blueprint", bucket = "moves", role = "roles/storage.objectViewer" }
    "dispatcher/blueprints/new"  = { runtime = "dispatcher", bucket = "blueprints", role = "roles/storage.objectCreator" }
    "dispatcher/blueprints/read" = { runtime = "dispatcher", bucket = "blueprints", role = "roles/storage.objectViewer" }
    "job/songs/viewer"           = { runtime = "job", bucket = "songs", role = "roles/storage.objectViewer" }
    "job/moves/viewer"           = { runtime = "job", bucket = "moves", role = "roles/storage.objectViewer" }
    "job/blueprints/viewer"      = { runtime = "job", bucket = "blueprints", role = "roles/storage.objectViewer" }
    "job/videos/new"             = { runtime = "job", bucket = "videos", role = "roles/storage.objectCreator" }
    "job/videos/read"            = { runtime = "job", bucket = "videos", role = "roles/storage.objectViewer" }
  }

  # The subscription Pub/Sub reads from for each consumer: ours in push mode, Eventarc's
  # otherwise (exactly one of the two maps holds each consumer).
  source_subscriptions = merge(
    { for name, s in google_pubsub_subscription.subscriptions : name => s.name if contains(keys(local.consumer_subscriptions), name) },
    { for name, t in google_eventarc_trigger.consumers : name => t.transport[0].pubsub[0].subscription },
  )
}

# --- service accounts ---------------------------------------------------------------------

resource "google_service_account" "runtime" {
  for_each = local.runtimes

  account_id   = "${var.name_prefix}-${each.key}-run"
  display_name = "choreo ${each.key} (runtime)"
}

# The identity that calls a service: Pub/Sub push and Eventarc tokens for consumers, the storage
# trigger for the producer. Separate from the runtime identity so being invoked and acting are
# different principals.
resource "google_service_account" "invoker" {
  for_each = local.trigger_identities

  account_id   = "${var.name_prefix}-${each.key}-inv"
  display_name = "choreo ${each.key} (invoker: push / Eventarc)"
}

# --- runtime access -----------------------------------------------------------------------

resource "google_project_iam_member" "runtime_cloudsql_client" {
  for_each = local.runtimes

  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = google_service_account.runtime[each.key].member
}

resource "google_secret_manager_secret_iam_member" "db_password" {
  for_each = local.runtimes

  secret_id = google_secret_manager_secret.db_password.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime[each.key].member
}

resource "google_secret_manager_secret_iam_member" "gemini_api_key" {
  secret_id = google_secret_manager_secret.gemini_api_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime["blueprint"].member
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.topic_publishers

  topic  = google_pubsub_topic.topics[each.value.topic].name
  role   = "roles/pubsub.publisher"
  member = google_service_account.runtime[each.value.runtime].member
}

# The video job reads, writes, renames and deletes cache entries: objectUser, on that bucket only.
resource "google_storage_bucket_iam_member" "job_render_cache" {
  bucket = google_storage_bucket.render_cache.name
  role   = "roles/storage.objectUser"
  member = google_service_account.runtime["job"].member
}

resource "google_storage_bucket_iam_member" "runtime" {
  for_each = local.bucket_grants

  bucket = google_storage_bucket.buckets[each.value.bucket].name
  role   = each.value.role
  member = google_service_account.runtime[each.value.runtime].member
}

# --- the dispatcher starts the video job --------------------------------------------------

# Narrower than roles/run.developer: start an execution, with per-execution env overrides
# (BLUEPRINT_JSON), and nothing else.
resource "google_project_iam_custom_role" "job_launcher" {
  role_id     = "${replace(var.name_prefix, "-", "_")}_job_launcher"
  title       = "choreo video job launcher"
  description = "Run the video Cloud Run Job with environment overrides."
  permissions = ["run.jobs.run", "run.jobs.runWithOverrides"]
}

resource "google_cloud_run_v2_job_iam_member" "dispatcher_launches_video" {
  name     = google_cloud_run_v2_job.video.name
  location = google_cloud_run_v2_job.video.location
  role     = google_project_iam_custom_role.job_launcher.id
  member   = google_service_account.runtime["dispatcher"].member
}

# Starting an execution acts as the job's service account.
resource "google_service_account_iam_member" "dispatcher_acts_as_job" {
  service_account_id = google_service_account.runtime["job"].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.runtime["dispatcher"].member
}

# --- Cloud Scheduler starts the reaper job -------------------------------------------------

# The identity behind the scheduler's OAuth token: it may start the reaper job and do nothing
# else (roles/run.invoker on that one job includes run.jobs.run).
resource "google_service_account" "scheduler" {
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "choreo Cloud Scheduler (starts the reaper job)"
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_reaper" {
  name     = google_cloud_run_v2_job.reaper.name
  location = google_cloud_run_v2_job.reaper.location
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

# --- who may call the services ------------------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.trigger_identities

  name     = google_cloud_run_v2_service.services[each.key].name
  location = google_cloud_run_v2_service.services[each.key].location
  role     = "roles/run.invoker"
  member   = google_service_account.invoker[each.key].member
}

resource "google_cloud_run_v2_service_iam_member" "producer_clients" {
  for_each = toset(var.producer_invokers)

  name     = google_cloud_run_v2_service.services["producer"].name
  location = google_cloud_run_v2_service.services["producer"].location
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_project_iam_member" "invoker_event_receiver" {
  for_each = local.trigger_identities

  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.invoker[each.key].member
}

# --- Google service agents ----------------------------------------------------------------

# Dead-lettering: Pub/Sub forwards as its own service agent, which must publish to the
# dead-letter topic and acknowledge on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.dead_letter_topics

  topic  = google_pubsub_topic.topics[each.key].name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.consumer_subscriptions

  subscription = local.source_subscriptions[each.key]
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# Push subscriptions: Pub/Sub mints the OIDC token of the invoker identity.
resource "google_service_account_iam_member" "pubsub_mints_invoker_tokens" {
  for_each = var.consumer_delivery == "push" ? toset([for s in values(local.consumer_subscriptions) : s.service]) : toset([])

  service_account_id = google_service_account.invoker[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# Cloud Storage triggers: the storage service agent publishes the object notifications.
resource "google_project_iam_member" "gcs_agent_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}
