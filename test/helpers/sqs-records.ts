import type { SQSRecord } from 'aws-lambda';

/** An SQS record carrying what the EventBridge rule delivers: the whole event envelope as the body. */
export function sqsRecord(messageId: string, body: string, sentAt: string): SQSRecord {
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(Date.parse(sentAt)),
      SenderId: 'AIDAEVENTBRIDGE',
      ApproximateFirstReceiveTimestamp: String(Date.parse(sentAt)),
    },
    messageAttributes: {},
    md5OfBody: 'not-checked',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:strata-ingest',
    awsRegion: 'eu-west-1',
  };
}
