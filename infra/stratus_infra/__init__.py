"""The Stratus CDK app: one construct per concern, composed by `stack.StratusStack`."""
