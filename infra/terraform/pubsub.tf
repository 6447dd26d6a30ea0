# Topics and subscriptions, one resource per entry of topology.json (generated from
# schemas/topology.py). Nothing here names a topic or states a policy value: change the topology
# in code, regenerate, and tests/unit/test_terraform_topology.py keeps the two in step.

resource "google_pubsub_topic" "topics" {
  for_each = local.topology.topics

  name = each.key
  labels = {
    role = each.value.dead_letter_of == null ? "events" : "dead-letter"
  }
}

# In "push" mode every subscription of the topology is created here, consumers with a push
# endpoint. In "eventarc" mode Eventarc creates the consumers' subscriptions (eventarc.tf), so
# only the dead-letter subscriptions are created here; a second subscription per consumer would
# deliver every event twice.
resource "google_pubsub_subscription" "subscriptions" {
  for_each = {
    for name, s in local.topology.subscriptions : name => s
    if s.service == null || var.consumer_delivery == "push"
  }

  name                       = each.key
  topic                      = google_pubsub_topic.topics[each.value.topic].id
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  message_retention_duration = each.value.message_retention_duration
  enable_message_ordering    = each.value.enable_message_ordering

  retry_policy {
    minimum_backoff = each.value.retry_policy.minimum_backoff
    maximum_backoff = each.value.retry_policy.maximum_backoff
  }

  dynamic "dead_letter_policy" {
    for_each = each.value.dead_letter_policy == null ? [] : [each.value.dead_letter_policy]
    content {
      dead_letter_topic     = google_pubsub_topic.topics[dead_letter_policy.value.topic].id
      max_delivery_attempts = dead_letter_policy.value.max_delivery_attempts
    }
  }

  # Never expire: by default an idle subscription is deleted after 31 days, and a dead-letter
  # subscription is idle by design until something goes wrong.
  expiration_policy {
    ttl = ""
  }

  # Push to the consumer's service with an OIDC token of its invoker identity; Cloud Run checks
  # roles/run.invoker, the service checks the audience and email (PUSH_AUTH_*).
  dynamic "push_config" {
    for_each = each.value.service == null ? [] : [each.value.service]
    content {
      push_endpoint = "${google_cloud_run_v2_service.services[push_config.value].uri}${var.push_endpoint_path}"
      oidc_token {
        service_account_email = google_service_account.invoker[push_config.value].email
        audience              = local.service_urls[push_config.value]
      }
    }
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter_publisher]
}
