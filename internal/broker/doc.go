// Package broker owns the hub's use of Kafka: the embedded Kafka-protocol broker (franz-go's kfake
// with a data directory and synced writes) that `socialhub run` starts in process, topic creation,
// and the kafka-go writers and readers every stage uses, configured the same way everywhere
// (RequiredAcks all, hashing by key, explicit commits).
package broker
