//! AWS adapters: DynamoDB (one table) and SQS.
