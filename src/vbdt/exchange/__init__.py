"""The exchange, the only layer doing I/O: transports, the ledger and the agency client.

:mod:`.transport` is the interface that :mod:`.memory` (embedded broker) and :mod:`.amqp`
(RabbitMQ; the only module importing aio-pika) implement; :mod:`.broker` provisions RabbitMQ;
:mod:`.routing` names exchanges, queues and keys; :mod:`.receipts` is the delivery state machine;
:mod:`.ledger` is the durable record; :mod:`.pipeline` is the pure admission of a received
message; :mod:`.client` is the agency client built on all of them, a facade over :mod:`.outbox`
(publishing and its outcomes), :mod:`.answers` (status messages, inbox items), :mod:`.sending`,
:mod:`.receiving` (one delivery) and :mod:`.inbox` (the loop, bounded by :mod:`.budget`).
"""
