# Cloud SQL for PostgreSQL 15. Reached from Cloud Run through the built-in Cloud SQL connection
# (a unix socket under /cloudsql, IAM-authorised and encrypted by the connector), so the instance
# has a public IP with no authorised networks and accepts encrypted connections only.

resource "google_sql_database_instance" "main" {
  name                = "${var.name_prefix}-pg"
  database_version    = "POSTGRES_15"
  region              = var.region
  deletion_protection = var.deletion_protection

  settings {
    # Custom tiers need Enterprise edition (Enterprise Plus is the default for newer versions).
    edition           = "ENTERPRISE"
    tier              = var.db_tier
    availability_type = var.db_availability_type
    disk_type         = "PD_SSD"
    disk_size         = var.db_disk_size_gb
    disk_autoresize   = true

    ip_configuration {
      ipv4_enabled = true
      ssl_mode     = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      start_time                     = var.db_backup_start_time
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = 7

      backup_retention_settings {
        retained_backups = var.db_backup_retained_count
      }
    }

    database_flags {
      name  = "max_connections"
      value = tostring(var.db_max_connections)
    }
  }
}

resource "google_sql_database" "app" {
  name     = var.db_name
  instance = google_sql_database_instance.main.name
}

resource "google_sql_user" "app" {
  name                = var.db_user
  instance            = google_sql_database_instance.main.name
  password_wo         = ephemeral.random_password.db.result
  password_wo_version = var.db_password_version
  # PostgreSQL refuses to drop a role that owns objects; let destroy leave it with the instance.
  deletion_policy = "ABANDON"
}
