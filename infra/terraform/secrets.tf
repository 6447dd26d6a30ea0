# Secret values never pass through Terraform state: the Gemini key is created empty and filled by
# an operator (docs/DEPLOY.md); the database password is ephemeral and written only to
# write-only arguments.

resource "google_secret_manager_secret" "gemini_api_key" {
  secret_id = "${var.name_prefix}-gemini-api-key"

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret" "db_password" {
  secret_id = "${var.name_prefix}-db-password"

  replication {
    auto {}
  }
}

# Generated during each plan/apply and never stored; only written when db_password_version
# changes, to both the SQL user and this secret version in the same apply.
ephemeral "random_password" "db" {
  length  = 32
  special = false
}

resource "google_secret_manager_secret_version" "db_password" {
  secret                 = google_secret_manager_secret.db_password.id
  secret_data_wo         = ephemeral.random_password.db.result
  secret_data_wo_version = var.db_password_version
}
