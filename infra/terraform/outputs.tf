output "service_urls" {
  description = "HTTPS URL of each Cloud Run service (producer, blueprint, dispatcher, status)."
  value       = { for key, svc in google_cloud_run_v2_service.services : key => svc.uri }
}

output "video_job" {
  description = "Full resource name of the video Cloud Run Job the dispatcher starts."
  value       = google_cloud_run_v2_job.video.id
}

output "migrate_job" {
  description = "Name of the Cloud Run Job that applies the SQL migrations (`gcloud run jobs execute <name> --region <region> --wait`)."
  value       = google_cloud_run_v2_job.migrate.name
}

output "reaper_job" {
  description = "Name of the Cloud Run Job that fails stuck tasks (`python -m producers.ops reap --publish`, what `choreo tasks reap --publish` does), run by Cloud Scheduler on var.reaper_schedule; run it by hand with `gcloud run jobs execute <name> --region <region>`."
  value       = google_cloud_run_v2_job.reaper.name
}

output "buckets" {
  description = "Bucket name per role (songs, moves, videos, blueprints); the services get them as SONGS_BUCKET etc."
  value       = { for role, b in google_storage_bucket.buckets : role => b.name }
}

output "topics" {
  description = "Full resource name of every Pub/Sub topic, keyed by topic name."
  value       = { for name, t in google_pubsub_topic.topics : name => t.id }
}

output "subscriptions" {
  description = "Name of the subscription each topology subscription is realised as (Eventarc's own for consumers in eventarc mode)."
  value = merge(
    { for name, s in google_pubsub_subscription.subscriptions : name => s.name },
    local.source_subscriptions,
  )
}

output "sql_connection_name" {
  description = "Cloud SQL instance connection name (project:region:instance), for the Cloud SQL Auth Proxy."
  value       = google_sql_database_instance.main.connection_name
}

output "database_url" {
  description = "DATABASE_URL the services use (unix socket under /cloudsql; no password: it comes from PGPASSWORD)."
  value       = local.database_url
}

output "db_password_secret" {
  description = "Secret Manager secret holding the database password."
  value       = google_secret_manager_secret.db_password.id
}

output "gemini_api_key_secret" {
  description = "Secret Manager secret an operator fills with the Gemini API key (then set gemini_enabled = true)."
  value       = google_secret_manager_secret.gemini_api_key.id
}

output "runtime_service_accounts" {
  description = "Email of the identity each deployable runs as."
  value       = { for key, sa in google_service_account.runtime : key => sa.email }
}

output "invoker_service_accounts" {
  description = "Email of the identity that calls each service (push/Eventarc tokens); the services check it as PUSH_AUTH_SERVICE_ACCOUNT."
  value       = { for key, sa in google_service_account.invoker : key => sa.email }
}
