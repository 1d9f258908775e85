"""chatmaid_kafka: the Kafka bridge of chatmaid-connectors."""
