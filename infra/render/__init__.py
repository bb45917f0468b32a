"""The offline render: run the stack program under Pulumi mocks, write and check every manifest."""
