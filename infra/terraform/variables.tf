variable "project_id" {
  description = "Google Cloud project that holds every resource."
  type        = string
}

variable "region" {
  description = "Region for Cloud Run, Eventarc, Cloud SQL and the buckets (one region keeps the storage trigger and the songs bucket co-located, as Eventarc requires)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every named resource (services, job, service accounts, instance); short because service account ids are limited to 30 characters."
  type        = string
  default     = "choreo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.name_prefix))
    error_message = "name_prefix must be 2-12 characters: lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "bucket_name_prefix" {
  description = "Prefix of the four bucket names (<prefix>-songs, -moves, -videos, -blueprints). Bucket names are global, so use something unique such as the project id."
  type        = string
}

variable "labels" {
  description = "Labels added to every resource that supports them (provider default_labels)."
  type        = map(string)
  default     = { app = "choreo" }
}

variable "images" {
  description = "Container image per deployable, with an explicit tag or digest (keep the previous tags: rolling back is re-applying with them). Keys: producer, blueprint, dispatcher, status, job."
  type = object({
    producer   = string
    blueprint  = string
    dispatcher = string
    status     = string
    job        = string
  })
}

variable "migrate_image" {
  description = "Image that runs `python -m producers.ops migrate` as the migration job; null means the status recorder's image (it carries producers.ops and psycopg, which is all migrations need)."
  type        = string
  default     = null
}

variable "log_level" {
  description = "LOG_LEVEL for every service and job."
  type        = string
  default     = "INFO"
}

variable "consumer_delivery" {
  description = "How consumer subscriptions reach their Cloud Run service. \"push\": the topology's own subscriptions push with an OIDC token (dead-letter, retry, ack deadline and retention exactly as in schemas/topology.py, all in Terraform state). \"eventarc\": one Eventarc Pub/Sub trigger per consumer; Eventarc creates the subscription and a local-exec step (needs gcloud) applies the topology's policies to it."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "eventarc"], var.consumer_delivery)
    error_message = "consumer_delivery must be \"push\" or \"eventarc\"."
  }
}

variable "push_endpoint_path" {
  description = "HTTP path on each consumer service that receives push and Eventarc requests."
  type        = string
  default     = "/"
}

variable "storage_event_path" {
  description = "HTTP path on the producer service that receives the Cloud Storage object-finalized CloudEvents."
  type        = string
  default     = "/"
}

variable "producer_ingress" {
  description = "Ingress of the producer service: INGRESS_TRAFFIC_ALL when clients outside the project call it, INGRESS_TRAFFIC_INTERNAL_ONLY when only Eventarc and in-project callers do. Consumers are always internal-only."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.producer_ingress)
    error_message = "producer_ingress must be one of INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY, INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "producer_invokers" {
  description = "IAM members (\"serviceAccount:api@p.iam.gserviceaccount.com\", \"group:...\") allowed to call the producer's request API besides the storage trigger."
  type        = list(string)
  default     = []
}

variable "service_resources" {
  description = "Per Cloud Run service: CPU, memory, instance bounds, requests per instance, DB pool size, whether CPU stays allocated between requests, and the producer's request timeout (a consumer's is its subscription's ack deadline from the topology, so Pub/Sub never redelivers a message whose request is still running). The blueprint consumer holds the FAISS index in memory: see docs/SCALING.md for the size per move."
  type = map(object({
    cpu               = string
    memory            = string
    min_instances     = number
    max_instances     = number
    concurrency       = number
    db_pool_max_size  = number
    cpu_always_on     = bool
    request_timeout_s = optional(number, 60)
  }))
  default = {
    producer = {
      cpu              = "1", memory = "512Mi", min_instances = 0, max_instances = 10, concurrency = 40,
      db_pool_max_size = 2, cpu_always_on = false, request_timeout_s = 60
    }
    # CPU-bound analysis and planning (librosa, FAISS): 2 requests per 2 vCPUs. One warm instance
    # so the index is loaded before the first request; CPU always on because the index cache
    # rebuilds in a background thread between requests.
    blueprint = {
      cpu              = "2", memory = "2Gi", min_instances = 1, max_instances = 10, concurrency = 2,
      db_pool_max_size = 2, cpu_always_on = true
    }
    dispatcher = {
      cpu              = "1", memory = "512Mi", min_instances = 0, max_instances = 5, concurrency = 20,
      db_pool_max_size = 2, cpu_always_on = false
    }
    status = {
      cpu              = "1", memory = "512Mi", min_instances = 0, max_instances = 5, concurrency = 40,
      db_pool_max_size = 2, cpu_always_on = false
    }
  }

  validation {
    condition     = toset(keys(var.service_resources)) == toset(["producer", "blueprint", "dispatcher", "status"])
    error_message = "service_resources needs exactly the keys producer, blueprint, dispatcher, status."
  }

  # Every instance may open DB_POOL_MAX_SIZE connections; the sum at full scale-out must leave
  # db_connection_headroom free for video job executions, migrations and operators.
  validation {
    condition     = sum([for s in values(var.service_resources) : s.max_instances * s.db_pool_max_size]) <= var.db_max_connections - var.db_connection_headroom
    error_message = "sum(max_instances * db_pool_max_size) over the services exceeds db_max_connections - db_connection_headroom; lower pools or instances, or raise db_max_connections."
  }
}

variable "service_extra_env" {
  description = "Extra environment variables per service key (producer, blueprint, dispatcher, status), for tuning settings such as FAISS_NPROBE or WORKER_* without a code change. Secrets do not belong here."
  type        = map(map(string))
  default     = {}
}

variable "job_cpu" {
  description = "vCPUs of one video job task (seed plan: 1 CPU)."
  type        = string
  default     = "1"
}

variable "job_memory" {
  description = "Memory limit of one video job task (seed plan: 512 MiB, and the job's budget is below it)."
  type        = string
  default     = "512Mi"
}

variable "job_timeout_s" {
  description = "Seconds one video job task may run before Cloud Run stops it (seed plan: 5 minutes)."
  type        = number
  default     = 300
}

variable "job_max_retries" {
  description = "Extra attempts Cloud Run makes when a video job task exits non-zero. 1: the job already retries storage calls with backoff (JOB_STORAGE_RETRIES, seed task 12), so a task-level retry is for a crashed or evicted instance; its other failures (invalid blueprint, missing asset, FFmpeg error) fail the same way again."
  type        = number
  default     = 1

  validation {
    condition     = var.job_max_retries >= 0 && var.job_max_retries <= 10
    error_message = "job_max_retries must be between 0 and 10 (Cloud Run's bound)."
  }
}

variable "job_db_pool_max_size" {
  description = "DB_POOL_MAX_SIZE of one video job task: it writes the task row a few times, one connection is enough."
  type        = number
  default     = 1
}

variable "job_extra_env" {
  description = "Extra environment variables for the video job (e.g. JOB_X264_PRESET, JOB_RENDER_WORKERS). BLUEPRINT_JSON/BLUEPRINT_URI are set per execution by the dispatcher, not here."
  type        = map(string)
  default     = {}
}

variable "gemini_enabled" {
  description = "Mount the Gemini API key secret into the blueprint consumer. Leave false until an operator has added a secret version (a Cloud Run revision referencing a secret without versions fails to start). Setting it back to false is the rollback switch to the local planner and embedder."
  type        = bool
  default     = false
}

variable "db_tier" {
  description = "Cloud SQL machine tier (Enterprise edition custom or shared-core tier)."
  type        = string
  default     = "db-custom-1-3840"
}

variable "db_disk_size_gb" {
  description = "Initial SSD size of the Cloud SQL instance; it grows automatically."
  type        = number
  default     = 10
}

variable "db_availability_type" {
  description = "ZONAL (one zone, cheaper) or REGIONAL (standby in a second zone, automatic failover)."
  type        = string
  default     = "ZONAL"

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.db_availability_type)
    error_message = "db_availability_type must be ZONAL or REGIONAL."
  }
}

variable "db_max_connections" {
  description = "PostgreSQL max_connections flag, set explicitly so the pool budget in service_resources can be checked against it."
  type        = number
  default     = 100
}

variable "db_connection_headroom" {
  description = "Connections kept free of the services' pools for video job executions (job_db_pool_max_size each), migrations, operators and Cloud SQL's reserved superuser slots."
  type        = number
  default     = 30
}

variable "db_backup_start_time" {
  description = "UTC HH:MM at which the daily Cloud SQL backup starts."
  type        = string
  default     = "03:00"
}

variable "db_backup_retained_count" {
  description = "Daily backups kept."
  type        = number
  default     = 14
}

variable "db_name" {
  description = "PostgreSQL database name."
  type        = string
  default     = "choreo"
}

variable "db_user" {
  description = "PostgreSQL user the services connect as."
  type        = string
  default     = "choreo"
}

variable "db_password_version" {
  description = "Increment to rotate the database password: a new random password is written to the user and to Secret Manager (services pick it up on their next revision or instance start)."
  type        = number
  default     = 1
}

variable "deletion_protection" {
  description = "Protect the Cloud SQL instance, Cloud Run services and jobs from `terraform destroy`."
  type        = bool
  default     = true
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete non-empty buckets (test projects only)."
  type        = bool
  default     = false
}

variable "blueprint_retention_days" {
  description = "Days after which objects in the blueprints bucket are deleted (the database holds every blueprint; the bucket only carries oversized ones to the job)."
  type        = number
  default     = 30
}

variable "video_nearline_after_days" {
  description = "Days after which rendered videos move to Nearline storage (watched mostly in the first days; Nearline's 30-day minimum storage duration is then already spent)."
  type        = number
  default     = 30
}

variable "reaper_schedule" {
  description = "Cron schedule (UTC) on which Cloud Scheduler runs the reaper job, `python -m producers.ops reap --publish`: tasks stuck past their REAPER_*_TIMEOUT deadline are failed with task.failed (docs/DISPATCHER.md)."
  type        = string
  default     = "*/5 * * * *"
}

variable "render_cache_days" {
  description = "Days after which objects in the video job's render cache bucket (prepared clips, pieces, audio) are deleted; a deleted entry is simply rendered again."
  type        = number
  default     = 30
}
