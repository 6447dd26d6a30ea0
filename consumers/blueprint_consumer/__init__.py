"""The blueprint consumer: choreography.requested in, a stored blueprint and blueprint.ready out."""
