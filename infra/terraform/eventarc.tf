# Eventarc: a song uploaded to the songs bucket becomes a request (producer), and, in
# consumer_delivery = "eventarc" mode, each event topic reaches its consumer service.

resource "google_eventarc_trigger" "song_uploaded" {
  name            = "${var.name_prefix}-song-uploaded"
  location        = var.region
  service_account = google_service_account.invoker["producer"].email

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.finalized"
  }

  matching_criteria {
    attribute = "bucket"
    value     = google_storage_bucket.buckets["songs"].name
  }

  destination {
    cloud_run_service {
      service = google_cloud_run_v2_service.services["producer"].name
      region  = var.region
      path    = var.storage_event_path
    }
  }

  depends_on = [
    google_project_iam_member.gcs_agent_publisher,
    google_project_iam_member.invoker_event_receiver,
    google_cloud_run_v2_service_iam_member.invoker,
  ]
}

resource "google_eventarc_trigger" "consumers" {
  for_each = var.consumer_delivery == "eventarc" ? local.consumer_subscriptions : {}

  name            = "${var.name_prefix}-${each.value.service}"
  location        = var.region
  service_account = google_service_account.invoker[each.value.service].email

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.pubsub.topic.v1.messagePublished"
  }

  transport {
    pubsub {
      topic = google_pubsub_topic.topics[each.value.topic].id
    }
  }

  destination {
    cloud_run_service {
      service = google_cloud_run_v2_service.services[each.value.service].name
      region  = var.region
      path    = var.push_endpoint_path
    }
  }

  depends_on = [
    google_project_iam_member.invoker_event_receiver,
    google_cloud_run_v2_service_iam_member.invoker,
  ]
}

# Eventarc creates its subscription without a dead-letter policy and with its own deadline and
# retry settings; the provider cannot manage that subscription, so gcloud gives it the
# topology's policies. Re-runs when the subscription or any policy value changes.
resource "terraform_data" "eventarc_subscription_policy" {
  for_each = google_eventarc_trigger.consumers

  triggers_replace = [
    each.value.transport[0].pubsub[0].subscription,
    local.consumer_subscriptions[each.key],
  ]

  provisioner "local-exec" {
    command = join(" ", [
      "gcloud pubsub subscriptions update",
      each.value.transport[0].pubsub[0].subscription,
      "--project=${var.project_id}",
      "--ack-deadline=${local.consumer_subscriptions[each.key].ack_deadline_seconds}",
      "--message-retention-duration=${local.consumer_subscriptions[each.key].message_retention_duration}",
      "--min-retry-delay=${local.consumer_subscriptions[each.key].retry_policy.minimum_backoff}",
      "--max-retry-delay=${local.consumer_subscriptions[each.key].retry_policy.maximum_backoff}",
      "--dead-letter-topic=${google_pubsub_topic.topics[local.consumer_subscriptions[each.key].dead_letter_policy.topic].id}",
      "--max-delivery-attempts=${local.consumer_subscriptions[each.key].dead_letter_policy.max_delivery_attempts}",
    ])
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_pubsub_subscription_iam_member.dead_letter_subscriber,
  ]
}
