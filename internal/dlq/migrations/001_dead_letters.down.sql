DROP TABLE dlq_dead_letters;
