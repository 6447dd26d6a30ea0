# Cloud Run services (producer and the three consumers, each `python -m <its package>` serving $PORT
# with /healthz), the video job (`python -m job`), and the migration job (`python -m producers.ops migrate`).

locals {
  # Consumer services answer within their subscription's ack deadline; the producer's timeout
  # is a variable.
  consumer_ack_deadline = { for name, s in local.consumer_subscriptions : s.service => s.ack_deadline_seconds }

  # Service-specific settings on top of common_env. The dispatcher learns the job to start;
  # every consumer learns the token to expect (PUSH_AUTH_*: audience = its own URL, email = its
  # invoker identity).
  service_env = {
    for key in keys(local.service_names) : key => merge(
      local.common_env,
      {
        DB_POOL_MAX_SIZE          = tostring(var.service_resources[key].db_pool_max_size)
        PUSH_AUTH_ENABLED         = "true"
        PUSH_AUTH_AUDIENCE        = local.service_urls[key]
        PUSH_AUTH_SERVICE_ACCOUNT = google_service_account.invoker[key].email
        # Each relay publishes only the topics its identity may (iam.tf); the status recorder
        # publishes nothing, so it runs no relay and no row waits on a relay that cannot send it.
        OUTBOX_TOPICS        = join(",", sort(distinct([for grant in values(local.topic_publishers) : grant.topic if grant.runtime == key])))
        OUTBOX_RELAY_ENABLED = contains(keys(local.published_event_types), key) ? "true" : "false"
      },
      key == "dispatcher" ? { VIDEO_JOB_NAME = google_cloud_run_v2_job.video.id } : {},
      lookup(var.service_extra_env, key, {}),
    )
  }

  job_env = merge(
    local.common_env,
    { DB_POOL_MAX_SIZE = tostring(var.job_db_pool_max_size), DB_POOL_MIN_SIZE = "0" },
    # Prepared clips, rendered pieces and encoded audio outlive the execution (see storage.tf).
    # One FFmpeg run per vCPU: on the default 1 vCPU a second run gains nothing and would hold a
    # second ~180 MB ffmpeg inside the 512 MiB limit (which the in-memory disk shares).
    { JOB_CACHE_DIR = local.render_cache_mount, JOB_RENDER_WORKERS = tostring(local.job_vcpus) },
    var.job_extra_env,
  )
  render_cache_mount = "/render-cache"
  # job_cpu as whole vCPUs ("1", "2" or millicores such as "2000m"), at least one.
  job_vcpus = max(1, floor(endswith(var.job_cpu, "m") ? tonumber(trimsuffix(var.job_cpu, "m")) / 1000 : tonumber(var.job_cpu)))
}

resource "google_cloud_run_v2_service" "services" {
  for_each = local.service_names

  name                = each.value
  location            = var.region
  deletion_protection = var.deletion_protection
  # Consumers are reached only by Pub/Sub push and Eventarc, which count as internal traffic.
  ingress = each.key == "producer" ? var.producer_ingress : "INGRESS_TRAFFIC_INTERNAL_ONLY"

  template {
    service_account                  = google_service_account.runtime[each.key].email
    max_instance_request_concurrency = var.service_resources[each.key].concurrency
    timeout                          = "${lookup(local.consumer_ack_deadline, each.key, var.service_resources[each.key].request_timeout_s)}s"

    scaling {
      min_instance_count = var.service_resources[each.key].min_instances
      max_instance_count = var.service_resources[each.key].max_instances
    }

    volumes {
      name = "cloudsql"
      cloud_sql_instance {
        instances = [google_sql_database_instance.main.connection_name]
      }
    }

    containers {
      image = var.images[each.key]

      resources {
        limits = {
          cpu    = var.service_resources[each.key].cpu
          memory = var.service_resources[each.key].memory
        }
        cpu_idle          = !var.service_resources[each.key].cpu_always_on
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.service_env[each.key]
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name = "PGPASSWORD"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.db_password.secret_id
            version = "latest"
          }
        }
      }

      # Without the key the blueprint consumer uses its local planner and embedder.
      dynamic "env" {
        for_each = each.key == "blueprint" && var.gemini_enabled ? [google_secret_manager_secret.gemini_api_key.secret_id] : []
        content {
          name = "GEMINI_API_KEY"
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }

      # The blueprint consumer may load its index before it answers; allow up to 4 minutes.
      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 5
        failure_threshold = 48
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds = 30
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.db_password,
    google_secret_manager_secret_version.db_password,
    google_project_iam_member.runtime_cloudsql_client,
  ]
}

resource "google_cloud_run_v2_job" "video" {
  name                = "${var.name_prefix}-video"
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    # One task per execution: one execution renders one task's video.
    task_count = 1

    template {
      service_account = google_service_account.runtime["job"].email
      timeout         = "${var.job_timeout_s}s"
      max_retries     = var.job_max_retries
      # Cloud Storage volumes (gcsfuse) need the second-generation sandbox.
      execution_environment = "EXECUTION_ENVIRONMENT_GEN2"

      volumes {
        name = "cloudsql"
        cloud_sql_instance {
          instances = [google_sql_database_instance.main.connection_name]
        }
      }

      # A job's local disk is memory and dies with the execution: without this volume every
      # render would prepare its clips and encode every piece again.
      volumes {
        name = "render-cache"
        gcs {
          bucket    = google_storage_bucket.render_cache.name
          read_only = false
        }
      }

      containers {
        image = var.images.job

        resources {
          limits = {
            cpu    = var.job_cpu
            memory = var.job_memory
          }
        }

        dynamic "env" {
          for_each = local.job_env
          content {
            name  = env.key
            value = env.value
          }
        }

        env {
          name = "PGPASSWORD"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.db_password.secret_id
              version = "latest"
            }
          }
        }

        volume_mounts {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }

        volume_mounts {
          name       = "render-cache"
          mount_path = local.render_cache_mount
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.db_password,
    google_secret_manager_secret_version.db_password,
    google_project_iam_member.runtime_cloudsql_client,
  ]
}

# `gcloud run jobs execute <name> --wait` applies the SQL migrations from inside the project (no
# proxy on an operator's machine). Runs as the job's identity: it only needs Cloud SQL access.
resource "google_cloud_run_v2_job" "migrate" {
  name                = "${var.name_prefix}-migrate"
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    task_count = 1

    template {
      service_account = google_service_account.runtime["job"].email
      timeout         = "300s"
      # Migrations run in transactions and are recorded; a failure needs a human, not a retry.
      max_retries = 0

      volumes {
        name = "cloudsql"
        cloud_sql_instance {
          instances = [google_sql_database_instance.main.connection_name]
        }
      }

      containers {
        image   = coalesce(var.migrate_image, var.images.status)
        command = ["python"]
        args    = ["-m", "producers.ops", "migrate"]

        env {
          name  = "DATABASE_URL"
          value = local.database_url
        }

        env {
          name  = "LOG_JSON"
          value = "true"
        }

        env {
          name = "PGPASSWORD"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.db_password.secret_id
              version = "latest"
            }
          }
        }

        volume_mounts {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.db_password,
    google_secret_manager_secret_version.db_password,
    google_project_iam_member.runtime_cloudsql_client,
  ]
}

# `python -m producers.ops reap --publish` (as `choreo tasks reap --publish`): fails tasks whose worker was lost (no update past their state's
# REAPER_*_TIMEOUT deadline), then publishes their task.failed. Consumer services get CPU only
# while they handle a request, so their reaper threads are no clock here: Cloud Scheduler runs
# this job instead (iam.tf lets its identity start it, and nothing else).
resource "google_cloud_run_v2_job" "reaper" {
  name                = "${var.name_prefix}-reaper"
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    task_count = 1

    template {
      service_account = google_service_account.runtime["reaper"].email
      timeout         = "300s"
      # The next scheduled run is the retry; a pass is safe to repeat.
      max_retries = 0

      volumes {
        name = "cloudsql"
        cloud_sql_instance {
          instances = [google_sql_database_instance.main.connection_name]
        }
      }

      containers {
        # The status recorder's image carries the operator one-shots (python -m producers.ops).
        image   = var.images.status
        command = ["python"]
        args    = ["-m", "producers.ops", "reap", "--publish"]

        dynamic "env" {
          for_each = local.common_env
          content {
            name  = env.key
            value = env.value
          }
        }

        env {
          name = "PGPASSWORD"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.db_password.secret_id
              version = "latest"
            }
          }
        }

        volume_mounts {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.db_password,
    google_secret_manager_secret_version.db_password,
    google_project_iam_member.runtime_cloudsql_client,
  ]
}

# Runs the reaper job through the Cloud Run Admin API (jobs:run) with an OAuth token of its own
# identity. Needs the Cloud Scheduler API (cloudscheduler.googleapis.com; docs/DEPLOY.md).
resource "google_cloud_scheduler_job" "reaper" {
  name             = "${var.name_prefix}-reaper"
  region           = var.region
  description      = "Fail choreo tasks whose worker was lost (python -m producers.ops reap --publish)."
  schedule         = var.reaper_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/${google_cloud_run_v2_job.reaper.id}:run"

    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_runs_reaper]
}
