# The four buckets the code names in StorageSettings (SONGS_BUCKET, ...). Uniform access (IAM
# only, no object ACLs) and public access prevention everywhere: nothing is served publicly.

resource "google_storage_bucket" "buckets" {
  for_each = local.bucket_names

  name                        = each.value
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy_buckets

  # Blueprints: PostgreSQL keeps every blueprint; objects here only carry a blueprint too large
  # for BLUEPRINT_JSON to its job execution, which has finished (or given up) long before.
  dynamic "lifecycle_rule" {
    for_each = each.key == "blueprints" ? [var.blueprint_retention_days] : []
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  # Videos: watched mostly right after rendering. Nearline costs about half of Standard per GB
  # month, with a retrieval fee and a 30-day minimum that a video older than 30 days has met.
  dynamic "lifecycle_rule" {
    for_each = each.key == "videos" ? [var.video_nearline_after_days] : []
    content {
      condition {
        age                   = lifecycle_rule.value
        matches_storage_class = ["STANDARD"]
      }
      action {
        type          = "SetStorageClass"
        storage_class = "NEARLINE"
      }
    }
  }
}

# The video job's render cache (JOB_CACHE_DIR, mounted with gcsfuse in run.tf): prepared clips,
# rendered pieces and encoded audio, content-addressed, so any execution may reuse what another
# made. Entries are written under a temporary name and renamed into place; deleting any of them
# is always safe, so old entries simply age out.
resource "google_storage_bucket" "render_cache" {
  name                        = "${var.bucket_name_prefix}-render-cache"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = var.render_cache_days
    }
    action {
      type = "Delete"
    }
  }
}
